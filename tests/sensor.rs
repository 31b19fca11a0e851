//! The auto-ranging reader over the real `bh1750` driver: against the simulated BH1750 on a virtual clock, and
//! against scripted bus transactions (embedded-hal-mock).

use std::sync::Arc;
use std::time::Duration;

use bh1750::{Resolution, BH1750};
use chrono::NaiveTime;
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as DelayTx};
use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2cTx};

use greenhoused::config::{
    Ambient, MockSettings, OnStart, OnStop, RelaySettings, SensorSettings, SensorSource,
};
use greenhoused::hw::bh1750::{AutoRanging, Mode, Setting, LADDER, WORST_CASE_CYCLE};
use greenhoused::hw::mock::{self, ClockDelay, SensorFault, SimBh1750, VirtualClock, World};
use greenhoused::hw::{LuxSensor, Measurement, SensorError};

const ADDR: u8 = 0x23;

struct Rig {
    clock: VirtualClock,
    world: World,
    sensor: AutoRanging<SimBh1750, ClockDelay>,
}

fn rig(ambient_lux: f64) -> Rig {
    rig_at(ambient_lux, ADDR, ADDR)
}

fn rig_at(ambient_lux: f64, chip_address: u8, reader_address: u8) -> Rig {
    let clock = VirtualClock::new(NaiveTime::from_hms_opt(12, 0, 0).unwrap());
    let settings = MockSettings {
        ambient: Ambient::Constant(ambient_lux),
        lamp_lux: 400.0,
        time_scale: 1.0,
        weather: None,
    };
    let world = World::new(&settings, false, false, Arc::new(clock.clone()));
    let bus = SimBh1750::new(world.clone(), chip_address);
    let sensor = AutoRanging::new(bus, ClockDelay(Arc::new(clock.clone())), reader_address);
    Rig {
        clock,
        world,
        sensor,
    }
}

/// Datasheet maximum, computed independently of the crate: 180 ms (H, H2) scaled by MTreg/69.
fn datasheet_max_h(mtreg: u8) -> Duration {
    Duration::from_secs_f64(0.180 * f64::from(mtreg) / 69.0)
}

impl Rig {
    /// One measurement; returns it with the setting that produced it and the virtual time it took.
    fn measure(&mut self) -> (Result<Measurement, SensorError>, Setting, Duration) {
        let first = self.sensor.next_setting();
        let truth = self.world.lux_at_sensor();
        let t0 = self.clock.elapsed();
        let m = self.sensor.measure();
        let took = self.clock.elapsed() - t0;
        let used = if truth * first.counts_per_lux() >= 65535.0 {
            LADDER[0]
        } else {
            first
        };
        (m, used, took)
    }

    /// Measure and check the value against the simulated truth, within the resolution of the setting used.
    fn assert_reads_truth(&mut self) -> (f64, u16) {
        let truth = self.world.lux_at_sensor();
        let (m, used, _) = self.measure();
        match m {
            Ok(Measurement::Lux { lux, raw }) => {
                let tol = used.resolution_lux();
                assert!(
                    (lux - truth).abs() <= tol,
                    "{truth} lx read as {lux} (±{tol}) at {used:?}"
                );
                (lux, raw)
            }
            other => panic!("{truth} lx: expected a reading, got {other:?}"),
        }
    }
}

#[test]
fn reads_low_light_within_the_resolution() {
    for truth in [3.0, 0.5, 0.05] {
        let mut r = rig(truth);
        for _ in 0..3 {
            r.assert_reads_truth();
        }
        // Dusk readings come from the most sensitive step: ~0.11 lx per count.
        assert!(r.sensor.next_setting().resolution_lux() < 0.12);
    }
}

#[test]
fn reads_ordinary_and_full_sun_light() {
    for truth in [500.0, 12_345.0, 90_000.0, 120_000.0] {
        let mut r = rig(truth);
        for _ in 0..3 {
            r.assert_reads_truth();
        }
    }
}

#[test]
fn follows_changing_light_across_ranges() {
    let mut r = rig(0.5);
    for truth in [0.5, 40.0, 900.0, 30_000.0, 100_000.0, 250.0, 2.0, 0.0] {
        r.world.set_ambient_lux(Some(truth));
        // The first cycle after a big drop may read at a coarse step; the second is at the right one.
        r.sensor.measure().unwrap();
        r.assert_reads_truth();
    }
}

#[test]
fn above_range_is_saturated_never_a_number() {
    // Dim first: the first cycle (least sensitive step) reads ~0, so the next one is at the most sensitive step.
    let mut r = rig(0.5);
    r.measure().0.unwrap();
    assert_eq!(r.sensor.next_setting(), LADDER[4]);
    r.world.set_ambient_lux(Some(150_000.0));
    let (m, _, took) = r.measure();
    assert_eq!(m, Ok(Measurement::Saturated));
    // Most sensitive step, saturated, then the least sensitive one: the worst case, within the bound.
    assert_eq!(
        took,
        LADDER[4].max_conversion_time() + LADDER[0].max_conversion_time()
    );
    assert!(took <= WORST_CASE_CYCLE, "{took:?}");
    // Next cycle starts at the least sensitive step directly.
    let (m, _, took) = r.measure();
    assert_eq!(m, Ok(Measurement::Saturated));
    assert_eq!(took, LADDER[0].max_conversion_time());
    // Light back in range: a number again.
    r.world.set_ambient_lux(Some(80_000.0));
    r.assert_reads_truth();
}

#[test]
fn first_reading_is_fast_and_the_second_refines_at_dusk() {
    let truth = 3.0;
    let mut r = rig(truth);
    // First cycle: the least sensitive, fastest step; coarse but within its resolution.
    let (m, used, took) = r.measure();
    assert_eq!(used, LADDER[0]);
    assert!(took <= Duration::from_millis(100), "{took:?}");
    let coarse = match m {
        Ok(Measurement::Lux { lux, .. }) => lux,
        other => panic!("{other:?}"),
    };
    assert!(
        (coarse - truth).abs() <= LADDER[0].resolution_lux(),
        "{coarse}"
    );
    // Second cycle: the most sensitive step, within its ~0.11 lx resolution.
    let (m, used, _) = r.measure();
    assert_eq!(used, LADDER[4]);
    let fine = match m {
        Ok(Measurement::Lux { lux, .. }) => lux,
        other => panic!("{other:?}"),
    };
    let tol = LADDER[4].resolution_lux();
    assert!(tol < 0.12, "{tol}");
    assert!((fine - truth).abs() <= tol, "{fine} (±{tol})");
}

#[test]
fn sudden_saturation_is_remeasured_in_the_same_cycle() {
    let mut r = rig(50.0);
    r.assert_reads_truth();
    // A cloud clears: 50 lx → 90 klx between two cycles.
    r.world.set_ambient_lux(Some(90_000.0));
    let (lux, _) = r.assert_reads_truth();
    assert!(lux > 89_000.0);
}

#[test]
fn saturated_fault_reports_saturated() {
    let mut r = rig(300.0);
    r.assert_reads_truth();
    r.world.set_sensor_fault(SensorFault::Saturated);
    assert_eq!(r.sensor.measure(), Ok(Measurement::Saturated));
}

#[test]
fn nack_is_no_ack_and_the_sensor_recovers_after_replug() {
    let mut r = rig(500.0);
    r.assert_reads_truth();
    r.world.unplug_sensor();
    for _ in 0..3 {
        assert_eq!(
            r.sensor.measure(),
            Err(SensorError::NoAck { address: ADDR })
        );
    }
    // Re-plugged: the chip is back at its power-on defaults (MTreg 69); the reader rewrites its settings.
    r.world.plug_sensor();
    r.world.set_ambient_lux(Some(7.5));
    r.assert_reads_truth();
    r.assert_reads_truth();
}

#[test]
fn wrong_address_is_no_ack_with_that_address() {
    let mut r = rig_at(500.0, 0x23, 0x5c);
    let err = r.sensor.measure().unwrap_err();
    assert_eq!(err, SensorError::NoAck { address: 0x5c });
    assert!(err.to_string().contains("0x5c"), "{err}");
}

#[test]
fn stuck_sensor_repeats_its_raw_value() {
    let mut r = rig(500.0);
    r.assert_reads_truth();
    let (_, raw) = r.assert_reads_truth();
    r.world.set_sensor_fault(SensorFault::Stuck);
    for truth in [900.0, 100.0, 450.0] {
        r.world.set_ambient_lux(Some(truth));
        match r.sensor.measure() {
            Ok(Measurement::Lux { raw: stuck, .. }) => assert_eq!(stuck, raw),
            other => panic!("{other:?}"),
        }
    }
    r.world.set_sensor_fault(SensorFault::None);
    r.assert_reads_truth();
}

#[test]
fn each_cycle_waits_the_datasheet_maximum() {
    let mut r = rig(0.5);
    // Least sensitive step first: H @ MTreg 31, its full datasheet maximum.
    let (m, used, took) = r.measure();
    assert!(matches!(m, Ok(Measurement::Lux { .. })));
    assert_eq!(used, LADDER[0]);
    assert_eq!(used.mtreg, 31);
    assert!(took >= datasheet_max_h(31), "{took:?}");
    assert!(
        took - datasheet_max_h(31) < Duration::from_micros(2),
        "{took:?}"
    );
    // 0.5 lx is below one count there: the next cycle moves to H2 @ MTreg 254 and waits its full maximum.
    let (m, used, took) = r.measure();
    assert!(matches!(m, Ok(Measurement::Lux { .. })));
    assert_eq!(used.mode, Mode::High2);
    assert_eq!(used.mtreg, 254);
    assert!(took >= datasheet_max_h(254), "{took:?}");
    assert!(
        took - datasheet_max_h(254) < Duration::from_micros(2),
        "{took:?}"
    );
    for truth in [2_000.0, 100_000.0, 600.0] {
        r.world.set_ambient_lux(Some(truth));
        r.sensor.measure().unwrap();
        let (_, used, took) = r.measure();
        assert!(
            took >= datasheet_max_h(used.mtreg),
            "{truth} lx at {used:?}: {took:?}"
        );
        assert!(took <= WORST_CASE_CYCLE);
    }
}

#[test]
fn reading_before_the_maximum_gets_a_stale_value() {
    // The driver's own one-shot waits 1.2 × typical (144 ms at MTreg 69), less than the 180 ms maximum: against a
    // chip that needs the maximum it reads 0 the first time and the previous value after that.
    let clock = VirtualClock::new(NaiveTime::from_hms_opt(12, 0, 0).unwrap());
    let settings = MockSettings {
        ambient: Ambient::Constant(1000.0),
        lamp_lux: 0.0,
        time_scale: 1.0,
        weather: None,
    };
    let world = World::new(&settings, false, false, Arc::new(clock.clone()));
    let bus = SimBh1750::new(world.clone(), ADDR);
    let mut driver = BH1750::new(bus, ClockDelay(Arc::new(clock.clone())), false);
    assert_eq!(
        driver.get_one_time_measurement(Resolution::High).unwrap(),
        0.0
    );
    assert_eq!(clock.elapsed(), Duration::from_millis(144));
    // After the maximum the conversion is done and reads right; then the light changes and the early read of
    // the next one-shot returns the previous value.
    clock.advance(Duration::from_millis(36));
    let done = driver.get_current_measurement(Resolution::High).unwrap();
    assert!((done - 1000.0).abs() < 1.0, "{done}");
    world.set_ambient_lux(Some(200.0));
    let stale = driver.get_one_time_measurement(Resolution::High).unwrap();
    assert!((stale - 1000.0).abs() < 1.0, "{stale}");
    // The auto-ranging reader on the same kind of chip gets the current value.
    let mut r = rig(200.0);
    r.assert_reads_truth();
}

#[test]
fn mock_build_wires_sensor_relay_and_world() {
    let clock = VirtualClock::new(NaiveTime::from_hms_opt(21, 0, 0).unwrap());
    let settings = MockSettings {
        ambient: Ambient::Constant(120.0),
        lamp_lux: 400.0,
        time_scale: 1.0,
        weather: None,
    };
    let sensor_settings = SensorSettings {
        source: SensorSource::Bh1750,
        i2c_bus: "/dev/i2c-1".into(),
        address: 0x5c,
        interval: Duration::from_secs(1),
        topic: "laboratory/greenhouse/luminosity".into(),
        stale_after: Duration::from_secs(10),
    };
    let relay_settings = RelaySettings {
        gpio: 17,
        active_low: true,
        on_start: OnStart::Off,
        on_boot: OnStart::Off,
        on_stop: OnStop::Off,
    };
    let (world, mut sensor, mut relay) = mock::build(
        &settings,
        &sensor_settings,
        &relay_settings,
        false,
        Arc::new(clock.clone()),
    );
    assert!(!relay.read_back().unwrap());
    assert!(world.pin_high(), "active-low and off: line high");
    let lux = |m: Result<Measurement, SensorError>| match m {
        Ok(Measurement::Lux { lux, .. }) => lux,
        other => panic!("{other:?}"),
    };
    // The first reading is at the coarse, fast step (~1.85 lx per count); the second is refined.
    assert!((lux(sensor.measure()) - 120.0).abs() < 2.0);
    assert!((lux(sensor.measure()) - 120.0).abs() < 0.5);
    relay.set(true).unwrap();
    assert!(relay.read_back().unwrap());
    assert!(!world.pin_high());
    assert!((lux(sensor.measure()) - 520.0).abs() < 0.5);
    let set = mock::parse_mock_set(br#"{"lamp_broken": true, "ambient_lux": 10}"#).unwrap();
    world.apply(&set);
    sensor.measure().unwrap();
    assert!((lux(sensor.measure()) - 10.0).abs() < 0.12);
    world.apply(&mock::parse_mock_set(br#"{"sensor_fault": "nack"}"#).unwrap());
    assert_eq!(sensor.measure(), Err(SensorError::NoAck { address: 0x5c }));
}

// ---- scripted bus transactions (embedded-hal-mock) ----

/// One cycle: power on, MTreg high and low bits, continuous mode, (wait), read, power down.
fn cycle(mtreg_ops: [u8; 2], mode_op: u8, response: u16) -> Vec<I2cTx> {
    vec![
        I2cTx::write(ADDR, vec![0x01]),
        I2cTx::write(ADDR, vec![mtreg_ops[0]]),
        I2cTx::write(ADDR, vec![mtreg_ops[1]]),
        I2cTx::write(ADDR, vec![mode_op]),
        I2cTx::read(ADDR, response.to_be_bytes().to_vec()),
        I2cTx::write(ADDR, vec![0x00]),
    ]
}

/// MTreg 254 = 0b111_11110 → 0x47, 0x7e; 69 = 0b010_00101 → 0x42, 0x65; 31 = 0b000_11111 → 0x40, 0x7f.
const MT254: [u8; 2] = [0x47, 0x7e];
const MT69: [u8; 2] = [0x42, 0x65];
const MT31: [u8; 2] = [0x40, 0x7f];

#[test]
fn scripted_bus_sequence_of_two_cycles() {
    // ~500 lx at H @ 31 (opcode 0x10): 500 × 1.2 × 31/69 = 269.6 counts. 500.8 lx picks H2 @ 69 (opcode 0x11):
    // 1200 counts.
    let mut tx = cycle(MT31, 0x10, 270);
    tx.extend(cycle(MT69, 0x11, 1200));
    let mut i2c = I2cMock::new(&tx);
    let mut delay = CheckedDelay::new(&[DelayTx::delay_us(80_870), DelayTx::delay_us(180_000)]);
    let mut s = AutoRanging::new(i2c.clone(), delay.clone(), ADDR);
    match s.measure() {
        Ok(Measurement::Lux { lux, raw }) => {
            assert_eq!(raw, 270);
            // 270 / (1.2 × 31/69)
            assert!((lux - 500.8065).abs() < 0.001, "{lux}");
        }
        other => panic!("{other:?}"),
    }
    match s.measure() {
        Ok(Measurement::Lux { lux, raw }) => {
            assert_eq!(raw, 1200);
            assert!((lux - 500.0).abs() < 1e-9, "{lux}");
        }
        other => panic!("{other:?}"),
    }
    i2c.done();
    delay.done();
}

#[test]
fn scripted_saturation_remeasures_at_the_least_sensitive_step() {
    // First cycle at H @ 31 reads 1 count (≈ 1.85 lx, dusk): the next one is at H2 @ 254. There 0xFFFF is
    // re-measured at H @ 31 in the same cycle: 48_522 counts = 90 klx. Next cycle starts at H @ 31 and saturates
    // there: no re-measure, Saturated.
    let mut tx = cycle(MT31, 0x10, 1);
    tx.extend(cycle(MT254, 0x11, 0xFFFF));
    tx.extend(cycle(MT31, 0x10, 48_522));
    tx.extend(cycle(MT31, 0x10, 0xFFFF));
    let mut i2c = I2cMock::new(&tx);
    let mut delay = CheckedDelay::new(&[
        DelayTx::delay_us(80_870),
        DelayTx::delay_us(662_609),
        DelayTx::delay_us(80_870),
        DelayTx::delay_us(80_870),
    ]);
    // The saturating cycle's two waits are the worst case, within the published bound.
    assert!(Duration::from_micros(662_609 + 80_870) <= WORST_CASE_CYCLE);
    let mut s = AutoRanging::new(i2c.clone(), delay.clone(), ADDR);
    match s.measure() {
        Ok(Measurement::Lux { lux, raw }) => {
            assert_eq!(raw, 1);
            // 1 / (1.2 × 31/69)
            assert!((lux - 1.8548).abs() < 0.001, "{lux}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.next_setting(), LADDER[4]);
    match s.measure() {
        Ok(Measurement::Lux { lux, raw }) => {
            assert_eq!(raw, 48_522);
            assert!((lux - 90_000.0).abs() < 2.0, "{lux}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.measure(), Ok(Measurement::Saturated));
    i2c.done();
    delay.done();
}

#[test]
fn scripted_bus_errors_map_to_sensor_errors() {
    let tx = [
        I2cTx::write(ADDR, vec![0x01])
            .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)),
        I2cTx::write(ADDR, vec![0x01]),
        I2cTx::write(ADDR, vec![0x40]).with_error(ErrorKind::Bus),
        I2cTx::write(ADDR, vec![0x01])
            .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data)),
    ];
    let mut i2c = I2cMock::new(&tx);
    let mut delay = CheckedDelay::new(&[]);
    let mut s = AutoRanging::new(i2c.clone(), delay.clone(), ADDR);
    // Every cycle starts at H @ 31 (MTreg high byte 0x40); a failed cycle leaves the step unchanged.
    assert_eq!(s.measure(), Err(SensorError::NoAck { address: ADDR }));
    assert_eq!(s.next_setting(), LADDER[0]);
    assert!(matches!(s.measure(), Err(SensorError::Bus(msg)) if msg.contains("Bus error")));
    assert_eq!(s.next_setting(), LADDER[0]);
    assert_eq!(s.measure(), Err(SensorError::NoAck { address: ADDR }));
    i2c.done();
    delay.done();
}
