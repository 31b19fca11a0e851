#!/usr/bin/env python3
"""Build the weather traces of data/weather/ from real measured irradiance.

Source: the TMY3 file pvlib ships (723170TYA.CSV, Greensboro NC, 36.1 N: hourly global horizontal irradiance
measured or modelled by NREL for a typical meteorological year). For each hour the measured GHI is turned into a
clear-sky index k (GHI / the Ineichen clear-sky GHI of that hour); minute values are the clear-sky curve times k,
interpolated between hour centres, with seeded intra-hour cloud flicker on partly cloudy hours (stronger the
further k is from 0 and from 1), rescaled so every hour keeps its measured mean GHI. Then
lux at the sensor = GHI x 110 lm/W (daylight luminous efficacy) x 0.65 (greenhouse cover transmission).

Output: data/weather/<season>.csv with header `time,lux`, one row per minute, naive local standard time, from
00:00 three days before the week (warm-up: the forecast learns) to 06:00 after its seventh day.

Usage (not needed for the tests: the CSVs are committed):
    python3 -m venv /var/tmp/dli-venv && /var/tmp/dli-venv/bin/pip install pvlib
    /var/tmp/dli-venv/bin/python scripts/weather/build.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import pandas as pd
import pvlib

EFFICACY_LM_PER_W = 110.0
TRANSMISSION = 0.65
SEED = 20260101
YEAR = 2025  # the TMY months come from different years; the traces are put on one year
WEEKS = {"winter": "01-13", "spring": "04-07", "summer": "07-07"}
WARMUP_DAYS = 3  # the days before the week: a controller that has run before (its sunlight forecast learned)
DAYS = WARMUP_DAYS + 7
TAIL_H = 6  # the traces run to 06:00 after the last day, so 7 light-days starting at 06:00 are complete


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../data/weather")
    path = os.path.join(os.path.dirname(pvlib.__file__), "data", "723170TYA.CSV")
    tmy, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
    tz = int(meta["TZ"])
    loc = pvlib.location.Location(meta["latitude"], meta["longitude"], tz=f"Etc/GMT{-tz:+d}",
                                  altitude=meta["altitude"])
    # TMY3 rows are hour-ending: the value stamped HH:00 is the mean over the hour before. Put it on one year.
    ghi = pd.Series(tmy["ghi"].to_numpy(dtype=float),
                    index=[t.replace(year=YEAR) for t in tmy.index]).sort_index()
    ghi = ghi[~ghi.index.duplicated()]
    rng = np.random.default_rng(SEED)
    os.makedirs(out, exist_ok=True)
    for season, start in WEEKS.items():
        t0 = pd.Timestamp(f"{YEAR}-{start} 00:00", tz=loc.tz) - pd.Timedelta(days=WARMUP_DAYS)
        minutes = pd.date_range(t0, periods=DAYS * 1440 + TAIL_H * 60 + 1, freq="1min")
        clear = loc.get_clearsky(minutes, model="ineichen")["ghi"].to_numpy()
        lux = np.zeros(len(minutes))
        for h in range(DAYS * 24 + TAIL_H):
            a, b = h * 60, h * 60 + 60  # minutes of this hour: [a, b)
            measured = float(ghi.get(minutes[b], 0.0))  # hour-ending stamp
            clear_mean = float(clear[a:b].mean())
            if measured <= 0 or clear_mean <= 1:
                continue
            k = min(measured / clear_mean, 1.3)
            # Intra-hour flicker: cloud edges passing; amplitude peaks for k around 0.5, none for clear or overcast.
            amp = 0.9 * max(0.0, 1.0 - abs(2.0 * k - 1.0)) if k < 1.0 else 0.05
            n = b - a
            walk = np.cumsum(rng.normal(0, 1, n))
            walk = (walk - walk.mean()) / (walk.std() + 1e-9)
            flicker = np.clip(1.0 + amp * 0.6 * walk + amp * 0.3 * rng.normal(0, 1, n), 0.05, None)
            shape = clear[a:b] * flicker
            shape *= measured / shape.mean()  # keep the hour's measured mean
            lux[a:b] = shape * EFFICACY_LM_PER_W * TRANSMISSION
        frame = pd.DataFrame({"time": minutes.strftime("%Y-%m-%dT%H:%M:%S"), "lux": np.round(lux, 1)})
        dest = os.path.join(out, f"{season}.csv")
        frame.to_csv(dest, index=False)
        daily = [lux[d * 1440:(d + 1) * 1440].sum() * 60 * 0.0185 / 1e6 for d in range(DAYS)]
        print(f"{dest}: {len(frame)} rows, sun DLI per day (0.0185 umol/lux): "
              + " ".join(f"{x:.1f}" for x in daily))


if __name__ == "__main__":
    main()
