//! A simulated BH1750 on a simulated I2C bus, answering the same transactions as the real chip.
//!
//! Instruction set (datasheet): power down 0x00, power on 0x01, reset 0x07 (only while powered; clears the data
//! register), continuous H/H2/L 0x10/0x11/0x13, one-time H/H2/L 0x20/0x21/0x23 (powers down after the conversion),
//! MTreg high bits `0b01000_hhh`, low bits `0b011_lllll`. Measurement instructions are accepted while powered down
//! (the datasheet's own sequence examples send them directly). Other bytes are acknowledged and ignored.
//!
//! A conversion completes after the datasheet MAXIMUM conversion time for its mode and MTreg, measured on the
//! shared [`Clock`], so a reader that waits less sees the previous value (0 before the first conversion). The
//! light is sampled when the completed conversion is first observed. Count = lux × 1.2 × MTreg/69 (× 2 in H2),
//! truncated like an ADC; L-resolution drops the two lowest bits (its 4 lx steps); 0xFFFF at the top.

use std::time::{Duration, Instant};

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use super::world::{SensorFault, World};
use crate::hw::bh1750::{max_conversion_time, Mode, Setting, MTREG_DEFAULT, SATURATED_RAW};

/// The simulated bus's error: the addressed device did not acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no device acknowledged I2C address {address:#04x}")]
pub struct SimNack {
    pub address: u8,
}

impl embedded_hal::i2c::Error for SimNack {
    fn kind(&self) -> ErrorKind {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    }
}

#[derive(Debug, Clone, Copy)]
struct Conversion {
    mode: Mode,
    mtreg: u8,
    one_time: bool,
    started: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Chip {
    powered: bool,
    mtreg: u8,
    data: u16,
    conversion: Option<Conversion>,
}

impl Chip {
    /// State after power-up: powered down, MTreg 69, data register 0.
    const POWER_ON_RESET: Chip = Chip {
        powered: false,
        mtreg: MTREG_DEFAULT,
        data: 0,
        conversion: None,
    };
}

/// A BH1750 at `address` that measures the light of a [`World`] and obeys its `sensor_fault`.
pub struct SimBh1750 {
    world: World,
    address: u8,
    chip: Chip,
}

impl SimBh1750 {
    /// A chip (in its power-on state) answering at `address` only.
    pub fn new(world: World, address: u8) -> Self {
        SimBh1750 {
            world,
            address,
            chip: Chip::POWER_ON_RESET,
        }
    }

    /// Finish the running conversion if its time is up, latching a new count.
    fn catch_up(&mut self, now: Instant, fault: SensorFault) {
        let Some(conv) = self.chip.conversion else {
            return;
        };
        let period = max_conversion_time(conv.mode, conv.mtreg);
        let done_at = conv.started + period;
        if now < done_at {
            return;
        }
        let count = match fault {
            SensorFault::Saturated => SATURATED_RAW,
            _ => count_for(self.world.lux_at_sensor(), conv.mode, conv.mtreg),
        };
        if fault != SensorFault::Stuck {
            self.chip.data = count;
        }
        if conv.one_time {
            self.chip.conversion = None;
            self.chip.powered = false;
        } else {
            // Continuous: the conversion now running started at the end of the last whole period.
            let periods = if period.is_zero() {
                1
            } else {
                (now - conv.started).as_nanos() / period.as_nanos()
            };
            let since = Duration::from_nanos(
                u64::try_from(periods * period.as_nanos()).unwrap_or(u64::MAX),
            );
            let started = conv.started.checked_add(since).unwrap_or(now);
            self.chip.conversion = Some(Conversion { started, ..conv });
        }
    }

    fn instruction(&mut self, op: u8, now: Instant, fault: SensorFault) {
        let measure = |mode, one_time| Conversion {
            mode,
            mtreg: 0,
            one_time,
            started: now,
        };
        let start = match op {
            0x00 => {
                self.chip.powered = false;
                self.chip.conversion = None;
                None
            }
            0x01 => {
                self.chip.powered = true;
                None
            }
            0x07 => {
                if self.chip.powered && fault != SensorFault::Stuck {
                    self.chip.data = 0;
                }
                None
            }
            0x10 => Some(measure(Mode::High, false)),
            0x11 => Some(measure(Mode::High2, false)),
            0x13 => Some(measure(Mode::Low, false)),
            0x20 => Some(measure(Mode::High, true)),
            0x21 => Some(measure(Mode::High2, true)),
            0x23 => Some(measure(Mode::Low, true)),
            0x40..=0x47 => {
                self.chip.mtreg = (self.chip.mtreg & 0b0001_1111) | ((op & 0b111) << 5);
                None
            }
            0x60..=0x7f => {
                self.chip.mtreg = (self.chip.mtreg & 0b1110_0000) | (op & 0b1_1111);
                None
            }
            _ => None,
        };
        if let Some(conv) = start {
            self.chip.powered = true;
            self.chip.conversion = Some(Conversion {
                mtreg: self.chip.mtreg,
                ..conv
            });
        }
    }
}

/// The count the chip latches for `lux` at a mode and MTreg.
pub fn count_for(lux: f64, mode: Mode, mtreg: u8) -> u16 {
    let counts = (lux.max(0.0) * Setting { mode, mtreg }.counts_per_lux()).floor();
    // Clamped to the register's range, so the cast is exact.
    let raw = counts.min(f64::from(SATURATED_RAW)) as u16;
    if mode == Mode::Low && raw != SATURATED_RAW {
        raw & !0b11
    } else {
        raw
    }
}

impl ErrorType for SimBh1750 {
    type Error = SimNack;
}

impl I2c for SimBh1750 {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimNack> {
        let fault = self.world.sensor_fault();
        if fault == SensorFault::Nack {
            // Unplugged: it loses power and comes back in its power-on state.
            self.chip = Chip::POWER_ON_RESET;
            return Err(SimNack { address });
        }
        if address != self.address {
            return Err(SimNack { address });
        }
        let now = self.world.clock().now();
        self.catch_up(now, fault);
        for op in operations {
            match op {
                Operation::Write(bytes) => {
                    for &b in bytes.iter() {
                        self.instruction(b, now, fault);
                    }
                }
                Operation::Read(buf) => {
                    let data = self.chip.data.to_be_bytes();
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = data.get(i).copied().unwrap_or(0);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ambient, MockSettings};
    use crate::hw::mock::clock::VirtualClock;
    use chrono::NaiveTime;
    use std::sync::Arc;

    fn setup(lux: f64) -> (VirtualClock, World, SimBh1750) {
        let clock = VirtualClock::new(NaiveTime::from_hms_opt(12, 0, 0).unwrap());
        let settings = MockSettings {
            ambient: Ambient::Constant(lux),
            lamp_lux: 400.0,
            time_scale: 1.0,
            weather: None,
        };
        let world = World::new(&settings, false, false, Arc::new(clock.clone()));
        let dev = SimBh1750::new(world.clone(), 0x23);
        (clock, world, dev)
    }

    fn read(dev: &mut SimBh1750) -> u16 {
        let mut buf = [0u8; 2];
        dev.read(0x23, &mut buf).unwrap();
        u16::from_be_bytes(buf)
    }

    #[test]
    fn counts_follow_the_datasheet() {
        assert_eq!(count_for(1000.0, Mode::High, 69), 1200);
        assert_eq!(count_for(1000.0, Mode::High2, 69), 2400);
        assert_eq!(count_for(1000.0, Mode::High, 138), 2400);
        assert_eq!(count_for(1000.0, Mode::Low, 69), 1200);
        assert_eq!(count_for(1001.0, Mode::Low, 69), 1200);
        assert_eq!(count_for(1003.0, Mode::Low, 69), 1200);
        assert_eq!(count_for(1004.0, Mode::Low, 69), 1204);
        assert_eq!(count_for(1e6, Mode::High, 31), 0xFFFF);
        assert_eq!(count_for(-5.0, Mode::High, 69), 0);
    }

    #[test]
    fn continuous_conversion_completes_after_the_max_time() {
        let (clock, world, mut dev) = setup(1000.0);
        dev.write(0x23, &[0x01]).unwrap();
        dev.write(0x23, &[0x10]).unwrap();
        clock.advance(Duration::from_millis(179));
        assert_eq!(read(&mut dev), 0, "not done before 180 ms");
        clock.advance(Duration::from_millis(1));
        assert_eq!(read(&mut dev), 1200);
        // Continuous: later conversions follow the light.
        world.set_ambient_lux(Some(500.0));
        clock.advance(Duration::from_millis(180));
        assert_eq!(read(&mut dev), 600);
    }

    #[test]
    fn mtreg_and_one_time_mode() {
        let (clock, _world, mut dev) = setup(1000.0);
        // MTreg 254 = 0b111_11110.
        dev.write(0x23, &[0x47]).unwrap();
        dev.write(0x23, &[0x7e]).unwrap();
        dev.write(0x23, &[0x21]).unwrap();
        clock.advance(Duration::from_micros(662_608));
        assert_eq!(read(&mut dev), 0);
        clock.advance(Duration::from_micros(1));
        assert_eq!(read(&mut dev), count_for(1000.0, Mode::High2, 254));
        // One-time powered the chip down: reset is ignored, the value stays.
        dev.write(0x23, &[0x07]).unwrap();
        assert_eq!(read(&mut dev), count_for(1000.0, Mode::High2, 254));
        dev.write(0x23, &[0x01]).unwrap();
        dev.write(0x23, &[0x07]).unwrap();
        assert_eq!(read(&mut dev), 0, "reset while powered clears the register");
    }

    #[test]
    fn wrong_address_and_nack_fault() {
        let (clock, world, mut dev) = setup(1000.0);
        assert_eq!(dev.write(0x5c, &[0x01]), Err(SimNack { address: 0x5c }));
        dev.write(0x23, &[0x10]).unwrap();
        clock.advance(Duration::from_millis(200));
        assert_eq!(read(&mut dev), 1200);
        world.set_sensor_fault(SensorFault::Nack);
        let e = dev.write(0x23, &[0x01]).unwrap_err();
        assert_eq!(
            embedded_hal::i2c::Error::kind(&e),
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
        );
        world.set_sensor_fault(SensorFault::None);
        assert_eq!(read(&mut dev), 0, "power lost while unplugged");
    }

    #[test]
    fn stuck_and_saturated_faults() {
        let (clock, world, mut dev) = setup(1000.0);
        dev.write(0x23, &[0x10]).unwrap();
        clock.advance(Duration::from_millis(180));
        assert_eq!(read(&mut dev), 1200);
        world.set_sensor_fault(SensorFault::Stuck);
        world.set_ambient_lux(Some(10.0));
        clock.advance(Duration::from_millis(360));
        assert_eq!(read(&mut dev), 1200);
        world.set_sensor_fault(SensorFault::Saturated);
        clock.advance(Duration::from_millis(180));
        assert_eq!(read(&mut dev), 0xFFFF);
        world.set_sensor_fault(SensorFault::None);
        clock.advance(Duration::from_millis(180));
        assert_eq!(read(&mut dev), 12);
    }
}
