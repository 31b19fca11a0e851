//! Simulated hardware for `--mock-hardware`: a BH1750 on a simulated I2C bus (read by the same auto-ranging
//! driver code as on the Pi), a relay line with read-back, and a light world with fault switches.
//!
//! | file | holds |
//! |---|---|
//! | [`clock`] | the time shared by world, simulated chip and reader delays (real, scaled, virtual) |
//! | [`world`] | ambient light over the day, lamp contribution, relay pin, fault switches |
//! | [`set`] | the `P/mock/set` payload parser |
//! | [`sensor`] | the simulated BH1750 bus device |
//! | [`relay`] | the simulated relay |

pub mod clock;
pub mod relay;
pub mod sensor;
pub mod set;
pub mod world;

use std::sync::Arc;

pub use clock::{test_instant, Clock, ClockDelay, RealClock, ScaledClock, VirtualClock};
pub use relay::MockRelay;
pub use sensor::SimBh1750;
pub use set::{parse_mock_set, MockSet};
pub use world::{SensorFault, World};

use super::bh1750::AutoRanging;
use super::{LuxSensor, Relay};
use crate::config::{MockSettings, RelaySettings, SensorSettings};

/// The clock `--mock-hardware` should run on: real time, or [`ScaledClock`] when `mock.time_scale` ≠ 1.
pub fn clock_for(settings: &MockSettings) -> Arc<dyn Clock> {
    if settings.time_scale == 1.0 {
        Arc::new(RealClock)
    } else {
        Arc::new(ScaledClock::new(settings.time_scale))
    }
}

/// Build the simulated hardware: the world, the sensor (the real [`AutoRanging`] over the `bh1750` driver over a
/// [`SimBh1750`] at `sensor.address`, with delays on `clock`) and the relay (line at `initial_on`, honouring
/// `relay.active_low`).
pub fn build(
    settings: &MockSettings,
    sensor: &SensorSettings,
    relay: &RelaySettings,
    initial_on: bool,
    clock: Arc<dyn Clock>,
) -> (World, Box<dyn LuxSensor>, Box<dyn Relay>) {
    let world = World::new(settings, relay.active_low, initial_on, Arc::clone(&clock));
    let bus = SimBh1750::new(world.clone(), sensor.address);
    let lux_sensor = AutoRanging::new(bus, ClockDelay(clock), sensor.address);
    let mock_relay = MockRelay::new(world.clone());
    (world, Box::new(lux_sensor), Box::new(mock_relay))
}
