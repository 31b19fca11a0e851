//! The simulated relay line: a pin in the [`World`] with read-back, honouring `active_low` like the real one.

use super::world::World;
use crate::hw::{Relay, RelayError};

/// A relay on a simulated output line. With the world's `relay_stuck` set, writes are ignored and the read-back
/// keeps showing the old level.
pub struct MockRelay {
    world: World,
}

impl MockRelay {
    /// The relay whose line lives in `world`.
    pub fn new(world: World) -> Self {
        MockRelay { world }
    }
}

impl Relay for MockRelay {
    fn set(&mut self, on: bool) -> Result<(), RelayError> {
        let high = on != self.world.active_low();
        if !self.world.drive_pin(high) {
            log::debug!(
                "mock relay is stuck: write of {} ignored",
                if on { "on" } else { "off" }
            );
        }
        Ok(())
    }

    fn read_back(&mut self) -> Result<bool, RelayError> {
        Ok(self.world.lamp_on())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ambient, MockSettings};
    use crate::hw::mock::clock::VirtualClock;
    use chrono::NaiveTime;
    use std::sync::Arc;

    fn world(active_low: bool, initial_on: bool) -> World {
        let clock = Arc::new(VirtualClock::new(
            NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        ));
        let settings = MockSettings {
            ambient: Ambient::Constant(100.0),
            lamp_lux: 400.0,
            time_scale: 1.0,
            weather: None,
        };
        World::new(&settings, active_low, initial_on, clock)
    }

    #[test]
    fn drives_and_reads_back_honouring_active_low() {
        for active_low in [false, true] {
            let w = world(active_low, false);
            let mut relay = MockRelay::new(w.clone());
            assert!(!relay.read_back().unwrap());
            assert_eq!(w.pin_high(), active_low);
            relay.set(true).unwrap();
            assert!(relay.read_back().unwrap());
            assert_eq!(w.pin_high(), !active_low);
            assert_eq!(w.lux_at_sensor(), 500.0);
            relay.set(false).unwrap();
            assert!(!relay.read_back().unwrap());
            assert_eq!(w.lux_at_sensor(), 100.0);
        }
    }

    #[test]
    fn stuck_relay_ignores_writes() {
        let w = world(true, true);
        let mut relay = MockRelay::new(w.clone());
        assert!(relay.read_back().unwrap());
        w.set_relay_stuck(true);
        relay.set(false).unwrap();
        assert!(relay.read_back().unwrap(), "read-back shows the old level");
        assert!(w.lamp_on());
        w.set_relay_stuck(false);
        relay.set(false).unwrap();
        assert!(!relay.read_back().unwrap());
    }
}
