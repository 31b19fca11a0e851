"""Checks of the Home Assistant test (scripts/ha/run-test.sh), run with the Home Assistant root's Python.

Each sub-command is one phase; it prints `ok: ...` / `FAIL: ...` lines and exits 1 if anything failed. Home
Assistant is reached through its REST and WebSocket APIs (aiohttp, with the token run-test.sh wrote), the broker
with paho-mqtt (both come with Home Assistant).

    check.py token CONFIG_DIR                  write a long-lived access token into CONFIG_DIR/.storage/auth
    check.py setup-mqtt                        add the MQTT integration through its config flow
    check.py entities                          every entity, its class and unit; states follow the daemon
    check.py control                           switch, button and number from Home Assistant reach the daemon
    check.py watch-reannounce OUT              record when HA says online and when the config arrives
    check.py reannounced OUT                   after an HA restart: re-announced in 1-5 s, entities live again
    check.py removed COMPONENT                 the component's entity is gone, the others are still there
    check.py device-removed                    the device and all its entities are gone

Environment: HA_URL, HA_TOKEN_FILE, MQTT_PORT, PREFIX, DEVICE_ID, DEVICE_NAME, LAMP_WATTS.
"""

import asyncio
import json
import os
import secrets
import sys
import threading
import time
import uuid

FAILURES = []


def ok(msg):
    print(f"ok: {msg}", flush=True)


def fail(msg):
    FAILURES.append(msg)
    print(f"FAIL: {msg}", flush=True)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


ENV = os.environ
PREFIX = ENV.get("PREFIX", "laboratory/greenhouse")
DEVICE_ID = ENV.get("DEVICE_ID", "hatest")
DEVICE_NAME = ENV.get("DEVICE_NAME", "Greenhouse test")
CONFIG_TOPIC = f"homeassistant/device/greenhoused_{DEVICE_ID}/config"
DLI_UNIT = "mol/(m²·d)"

# component id -> (domain, device_class, unit)
EXPECTED = {
    "lux": ("sensor", "illuminance", "lx"),
    "light": ("switch", None, None),
    "auto": ("button", None, None),
    "mode": ("sensor", "enum", None),
    "dli": ("sensor", None, DLI_UNIT),
    "dli_target": ("number", None, DLI_UNIT),
    "lamp_on_time": ("sensor", "duration", "s"),
    "lamp_energy": ("sensor", "energy", "kWh"),
    "problem": ("binary_sensor", "problem", None),
}
if float(ENV.get("LAMP_WATTS", "0")) <= 0:
    del EXPECTED["lamp_energy"]


def uid(component):
    return f"greenhoused_{DEVICE_ID}_{component}"


# --- MQTT ---------------------------------------------------------------------------------------------------


class Mqtt:
    """A paho client that records every message on the given topics (retained ones included)."""

    def __init__(self, *topics):
        import paho.mqtt.client as paho

        self.lock = threading.Lock()
        self.messages = []  # (monotonic time, topic, payload str, retained)
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"hatest-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", int(ENV["MQTT_PORT"]))
        for t in topics:
            self.client.subscribe(t, qos=1)
        self.client.loop_start()

    def _on_message(self, _c, _u, msg):
        with self.lock:
            self.messages.append((time.monotonic(), msg.topic, msg.payload.decode("utf-8", "replace"), msg.retain))

    def latest(self, topic):
        with self.lock:
            for m in reversed(self.messages):
                if m[1] == topic:
                    return m[2]
        return None

    def wait_for(self, topic, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for m in self.messages:
                    if m[1] == topic and pred(m[2]):
                        return m
            time.sleep(0.1)
        return None

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


# --- Home Assistant -----------------------------------------------------------------------------------------


class Ha:
    def __init__(self, session):
        self.session = session
        self.url = ENV["HA_URL"]
        with open(ENV["HA_TOKEN_FILE"]) as f:
            self.token = f.read().strip()
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.ws = None
        self.ws_id = 0

    async def get(self, path):
        async with self.session.get(self.url + path, headers=self.headers) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

    async def post(self, path, body):
        async with self.session.post(self.url + path, headers=self.headers, json=body) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

    async def state(self, entity_id):
        status, body = await self.get(f"/api/states/{entity_id}")
        return body if status == 200 else None

    async def call(self, domain, service, data):
        status, body = await self.post(f"/api/services/{domain}/{service}", data)
        check(status == 200, f"service {domain}.{service} {data} → HTTP {status}")

    async def ws_command(self, msg):
        if self.ws is None:
            self.ws = await self.session.ws_connect(self.url + "/api/websocket")
            await self.ws.receive_json()  # auth_required
            await self.ws.send_json({"type": "auth", "access_token": self.token})
            reply = await self.ws.receive_json()
            if reply.get("type") != "auth_ok":
                raise RuntimeError(f"websocket auth failed: {reply}")
        self.ws_id += 1
        await self.ws.send_json({"id": self.ws_id, **msg})
        while True:
            reply = await self.ws.receive_json()
            if reply.get("id") == self.ws_id:
                if not reply.get("success"):
                    raise RuntimeError(f"websocket {msg['type']}: {reply}")
                return reply["result"]

    async def registry(self):
        """unique_id -> entity registry entry, for the MQTT platform."""
        entries = await self.ws_command({"type": "config/entity_registry/list"})
        return {e["unique_id"]: e for e in entries if e.get("platform") == "mqtt"}

    async def device(self):
        devices = await self.ws_command({"type": "config/device_registry/list"})
        for d in devices:
            if ["mqtt", f"greenhoused_{DEVICE_ID}"] in d.get("identifiers", []):
                return d
        return None

    async def wait(self, what, fn, timeout):
        """Poll `fn` (async, returns a value or None) until it returns something; None after `timeout` s."""
        end = time.monotonic() + timeout
        while True:
            value = await fn()
            if value is not None or time.monotonic() >= end:
                if value is None:
                    fail(f"timed out after {timeout} s waiting for {what}")
                return value
            await asyncio.sleep(0.5)


async def entity_ids(ha, timeout=90):
    """component -> entity_id once every expected entity is registered."""

    async def all_there():
        reg = await ha.registry()
        if all(uid(c) in reg for c in EXPECTED):
            return {c: reg[uid(c)]["entity_id"] for c in EXPECTED}
        return None

    return await ha.wait("every entity in the entity registry", all_there, timeout)


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# --- phases -------------------------------------------------------------------------------------------------


def cmd_token(config_dir):
    """A user with a long-lived access token (the form Home Assistant's profile page creates), stored directly in
    .storage/auth; the JWT is signed with the token's key exactly as Home Assistant signs access tokens."""
    import jwt

    now = time.time()
    user_id, token_id = uuid.uuid4().hex, uuid.uuid4().hex
    jwt_key = secrets.token_hex(64)
    created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now))
    data = {
        "version": 1,
        "minor_version": 1,
        "key": "auth",
        "data": {
            "users": [
                {
                    "id": user_id,
                    "group_ids": ["system-admin"],
                    "is_owner": True,
                    "is_active": True,
                    "name": "greenhoused test",
                    "system_generated": False,
                    "local_only": False,
                }
            ],
            "groups": [],
            "credentials": [],
            "refresh_tokens": [
                {
                    "id": token_id,
                    "user_id": user_id,
                    "client_id": None,
                    "client_name": "greenhoused test",
                    "client_icon": None,
                    "token_type": "long_lived_access_token",
                    "created_at": created,
                    "access_token_expiration": 86400.0,
                    "token": secrets.token_hex(64),
                    "jwt_key": jwt_key,
                    "last_used_at": None,
                    "last_used_ip": None,
                    "expire_at": None,
                    "credential_id": None,
                    "version": None,
                }
            ],
        },
    }
    os.makedirs(os.path.join(config_dir, ".storage"), exist_ok=True)
    with open(os.path.join(config_dir, ".storage", "auth"), "w") as f:
        json.dump(data, f)
    # Onboarding done: Home Assistant does not wait for an owner to be created.
    with open(os.path.join(config_dir, ".storage", "onboarding"), "w") as f:
        json.dump(
            {
                "version": 4,
                "minor_version": 1,
                "key": "onboarding",
                "data": {"done": ["user", "core_config", "analytics", "integration"]},
            },
            f,
        )
    token = jwt.encode({"iss": token_id, "iat": int(now), "exp": int(now) + 86400}, jwt_key, algorithm="HS256")
    print(token)


async def cmd_setup_mqtt(ha):
    status, flow = await ha.post("/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
    if not check(status == 200, f"MQTT config flow started (HTTP {status}, step {flow.get('step_id') if isinstance(flow, dict) else flow})"):
        return
    if flow.get("step_id") != "broker":
        fail(f"MQTT config flow: expected the broker step, got {flow}")
        return
    status, result = await ha.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}", {"broker": "127.0.0.1", "port": int(ENV["MQTT_PORT"])}
    )
    check(
        status == 200 and result.get("type") == "create_entry",
        f"MQTT integration set up through its config flow ({result.get('type')}, {result.get('title')})",
    )


async def cmd_entities(ha):
    ids = await entity_ids(ha)
    if ids is None:
        reg = await ha.registry()
        fail(f"registered MQTT entities: {sorted(reg)}")
        return
    ok(f"{len(ids)} entities registered: {', '.join(sorted(ids.values()))}")
    dev = await ha.device()
    if check(dev is not None, "device greenhoused_<id> in the device registry"):
        check(dev["name"] == DEVICE_NAME, f"device name {dev['name']!r}")
        check(bool(dev.get("sw_version")), f"device sw_version {dev.get('sw_version')!r}")
        reg = await ha.registry()
        check(
            all(reg[uid(c)].get("device_id") == dev["id"] for c in ids),
            "every entity belongs to the device",
        )
    for c, eid in ids.items():
        domain, device_class, unit = EXPECTED[c]
        check(eid.startswith(domain + "."), f"{c}: {eid} is a {domain}")

        async def available(eid=eid):
            s = await ha.state(eid)
            return s if s and s["state"] != "unavailable" else None

        s = await ha.wait(f"{eid} available", available, 30)
        if s is None:
            continue
        attrs = s["attributes"]
        check(attrs.get("device_class") == device_class, f"{eid}: device_class {attrs.get('device_class')!r}")
        check(
            attrs.get("unit_of_measurement") == unit,
            f"{eid}: unit {attrs.get('unit_of_measurement')!r}",
        )
    # The lux sensor follows P/state; mqtt_statestream publishes Home Assistant's view back to MQTT.
    lux_ss = "ha_states/" + ids["lux"].replace(".", "/")
    mqtt = Mqtt(
        f"{PREFIX}/state", f"{PREFIX}/light", f"{PREFIX}/mode", f"{PREFIX}/dli", f"{lux_ss}/#"
    )
    try:
        m = mqtt.wait_for(f"{PREFIX}/state", lambda p: json.loads(p).get("lux") is not None, 30)
        if check(m is not None, "daemon publishes P/state with lux"):

            async def lux_matches():
                daemon = json.loads(mqtt.latest(f"{PREFIX}/state"))["lux"]
                s = await ha.state(ids["lux"])
                v = number(s and s["state"])
                return (v, daemon) if v is not None and abs(v - daemon) <= max(1.0, 0.05 * daemon) else None

            r = await ha.wait("the lux sensor to follow P/state", lux_matches, 20)
            if r:
                ok(f"lux in Home Assistant {r[0]} = daemon's {r[1]}")
        m = mqtt.wait_for(f"{lux_ss}/unit_of_measurement", lambda p: True, 20)
        check(m is not None and json.loads(m[2]) == "lx", f"mqtt_statestream: {lux_ss}/unit_of_measurement {m and m[2]}")
        m = mqtt.wait_for(f"{lux_ss}/state", lambda p: number(p) is not None, 20)
        check(m is not None, f"mqtt_statestream: {lux_ss}/state {m and m[2]}")
        light = mqtt.wait_for(f"{PREFIX}/light", lambda p: True, 10)
        if light:

            async def light_matches():
                s = await ha.state(ids["light"])
                return s["state"] if s and s["state"] == mqtt.latest(f"{PREFIX}/light") else None

            check(await ha.wait("switch state = P/light", light_matches, 20) is not None, "switch state = P/light")
        mode = await ha.state(ids["mode"])
        check(mode and mode["state"] == mqtt.latest(f"{PREFIX}/mode"), f"mode sensor {mode and mode['state']!r}")
        problem = await ha.state(ids["problem"])
        check(problem and problem["state"] in ("on", "off"), f"problem sensor {problem and problem['state']!r}")
        dli = mqtt.latest(f"{PREFIX}/dli")
        if dli is None:
            print("note: the daemon publishes no P/dli (yet): DLI entities stay unknown", flush=True)
        else:
            d = json.loads(dli)
            s = await ha.state(ids["dli"])
            check(number(s["state"]) is not None, f"DLI sensor {s['state']!r} (P/dli mol {d.get('mol')})")
    finally:
        mqtt.close()


async def cmd_control(ha):
    ids = await entity_ids(ha, 30)
    if ids is None:
        return
    mqtt = Mqtt(f"{PREFIX}/light", f"{PREFIX}/mode", f"{PREFIX}/light/set", f"{PREFIX}/dli/target/set", f"{PREFIX}/dli")
    try:
        time.sleep(1)
        current = mqtt.latest(f"{PREFIX}/light") or "off"
        target = "off" if current == "on" else "on"
        await ha.call("switch", f"turn_{target}", {"entity_id": ids["light"]})
        m = mqtt.wait_for(f"{PREFIX}/light/set", lambda p: p == target, 10)
        check(m is not None and not m[3], f"switch.turn_{target} → P/light/set {target!r} (not retained)")
        m = mqtt.wait_for(f"{PREFIX}/light", lambda p: p == target, 15)
        check(m is not None, f"daemon switched the light {target} (P/light)")

        async def ha_light():
            s = await ha.state(ids["light"])
            return s if s and s["state"] == target else None

        check(await ha.wait(f"switch {target} in HA", ha_light, 15) is not None, f"switch shows {target} in HA")

        async def ha_mode(want):
            s = await ha.state(ids["mode"])
            return s if s and s["state"] == want else None

        check(await ha.wait("mode manual", lambda: ha_mode("manual"), 15) is not None, "mode sensor: manual")
        await ha.call("button", "press", {"entity_id": ids["auto"]})
        check(mqtt.wait_for(f"{PREFIX}/light/set", lambda p: p == "auto", 10) is not None, "button → P/light/set 'auto'")
        check(await ha.wait("mode auto", lambda: ha_mode("auto"), 15) is not None, "mode sensor: back to auto")

        await ha.call("number", "set_value", {"entity_id": ids["dli_target"], "value": 12.5})
        m = mqtt.wait_for(f"{PREFIX}/dli/target/set", lambda p: True, 10)
        check(m is not None and number(m[2]) == 12.5, f"number.set_value 12.5 → P/dli/target/set {m and m[2]!r}")
        if mqtt.latest(f"{PREFIX}/dli") is not None:

            async def target_applied():
                s = await ha.state(ids["dli_target"])
                return s if s and number(s["state"]) == 12.5 else None

            check(await ha.wait("DLI target 12.5", target_applied, 90) is not None, "DLI target 12.5 applied (P/dli)")
        else:
            print("note: the daemon publishes no P/dli (yet): the target's effect is not checked", flush=True)
    finally:
        mqtt.close()


def cmd_watch_reannounce(out):
    """Runs while Home Assistant restarts: writes when it said online and when the config came."""
    mqtt = Mqtt("homeassistant/status", CONFIG_TOPIC)
    try:
        online = mqtt.wait_for("homeassistant/status", lambda p: p == "online", 300)
        config = None
        if online:
            end = time.monotonic() + 30
            while time.monotonic() < end and config is None:
                with mqtt.lock:
                    config = next(
                        (m for m in mqtt.messages if m[1] == CONFIG_TOPIC and m[0] >= online[0] and m[2]), None
                    )
                time.sleep(0.1)
        with open(out, "w") as f:
            json.dump({"online": online and online[0], "config": config and config[0]}, f)
    finally:
        mqtt.close()


async def cmd_reannounced(ha, out):
    with open(out) as f:
        w = json.load(f)
    if not check(w["online"] is not None, "Home Assistant said online after its restart"):
        return
    if check(w["config"] is not None, "the daemon announced again after that"):
        delay = w["config"] - w["online"]
        check(0.9 <= delay <= 5.5, f"re-announced {delay:.2f} s after Home Assistant's online (1-5 s)")
    ids = await entity_ids(ha, 60)
    if ids is None:
        return
    for c, eid in ids.items():

        async def live(eid=eid):
            s = await ha.state(eid)
            return s if s and s["state"] != "unavailable" and not s["attributes"].get("restored") else None

        check(await ha.wait(f"{eid} live", live, 30) is not None, f"{eid} live again after the restart")


async def cmd_removed(ha, component):
    async def gone():
        reg = await ha.registry()
        return reg if uid(component) not in reg else None

    reg = await ha.wait(f"{component} removed from the entity registry", gone, 30)
    if reg is not None:
        ok(f"{component} removed from Home Assistant")
        left = [c for c in EXPECTED if c != component and uid(c) not in reg]
        check(not left, f"the other entities stay ({left or 'all there'})")


async def cmd_device_removed(ha):
    async def gone():
        reg = await ha.registry()
        dev = await ha.device()
        mine = [u for u in reg if u.startswith(f"greenhoused_{DEVICE_ID}_")]
        return True if dev is None and not mine else None

    check(await ha.wait("the device to be removed", gone, 30) is not None, "discovery = false removed the device")


async def with_ha(fn, *args):
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        ha = Ha(session)
        try:
            await fn(ha, *args)
        finally:
            if ha.ws is not None:
                await ha.ws.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "token":
        cmd_token(*args)
        return
    if cmd == "watch-reannounce":
        cmd_watch_reannounce(*args)
        return
    fn = {
        "setup-mqtt": cmd_setup_mqtt,
        "entities": cmd_entities,
        "control": cmd_control,
        "reannounced": cmd_reannounced,
        "removed": cmd_removed,
        "device-removed": cmd_device_removed,
    }[cmd]
    try:
        asyncio.run(with_ha(fn, *args))
    except Exception as e:  # a crash of the checker is a failed check, with its reason
        fail(f"{cmd}: {type(e).__name__}: {e}")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
