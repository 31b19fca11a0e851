//! Auto-ranging BH1750 over the `bh1750` driver. STUB (issue 2, item 5).

use std::time::Duration;

/// Upper bound of one auto-ranged measurement cycle: the datasheet maximum conversion time at the most sensitive
/// setting (H-resolution, MTreg 254: 180 ms × 254/69 ≈ 663 ms) plus a re-measurement at the least sensitive
/// setting after saturation (MTreg 31: ≈ 81 ms), rounded up for bus traffic. `sensor.interval_s` below this is
/// rejected by validation.
pub const WORST_CASE_CYCLE: Duration = Duration::from_millis(750);
