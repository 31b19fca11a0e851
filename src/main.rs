//! greenhoused: CLI → configuration → hardware → core loop → exit code.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use log::error;

use greenhoused::app::{self, Hardware};
use greenhoused::cli::{Cli, Command, SimulateArgs};
use greenhoused::config::{self, OnStop, SensorSource, Settings};
use greenhoused::hw::mock::{self, Clock, RealClock};
use greenhoused::hw::{Relay, RelayError, SensorError};
use greenhoused::{exit, hw, logging, persist};

fn main() -> ExitCode {
    greenhoused::memory::limit_arenas();
    let cli = Cli::parse();
    ExitCode::from(run(cli))
}

fn run(cli: Cli) -> u8 {
    if let Err(e) = logging::init(cli.log_target, cli.verbose, cli.quiet) {
        eprintln!("greenhoused: cannot set up logging: {e}");
        return exit::SOFTWARE;
    }

    let settings = match config::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return exit::CONFIG;
        }
    };
    if let Some(Command::Simulate(args)) = &cli.command {
        return simulate(&settings, args, cli.verbose > 0);
    }
    if cli.check_config {
        print!("{}", config::render_effective(&settings));
        return exit::OK;
    }
    greenhoused::mqtt::client::init_paho_for(&settings.mqtt);

    let hardware = match build_hardware(&settings, cli.mock_hardware) {
        Ok(hw) => hw,
        Err(e) => {
            error!("{e}");
            return e.exit_code();
        }
    };

    match app::run(settings, cli.config, hardware) {
        Ok(()) => exit::OK,
        Err(e @ app::AppError::Broker(_)) => {
            error!("{e}");
            exit::UNAVAILABLE
        }
        Err(e) => {
            error!("{e}");
            exit::SOFTWARE
        }
    }
}

/// `greenhoused simulate`: run, write the files, print one summary line.
fn simulate(settings: &Settings, args: &SimulateArgs, verbose: bool) -> u8 {
    let opts = greenhoused::sim::Options {
        weather: args.weather.clone(),
        from: args.from,
        days: args.days,
        strategy: args.strategy,
        out: args.out.clone(),
        verbose,
    };
    match greenhoused::sim::simulate(settings, &opts) {
        Ok(summary) => {
            let t = &summary.report.totals;
            eprintln!(
                "simulated {} light-days twice (strategy and threshold rule) in {:.2} s: {:.0} simulated s per \
                 wall s, {} sensor measurements; lamp {:.1} h, {} switches, DLI {:.2} mol; wrote {}",
                summary.days,
                summary.wall.as_secs_f64(),
                summary.speed(),
                summary.measurements,
                t.lamp_on_s / 3600.0,
                t.switches,
                t.dli_mol.total,
                opts.out.display()
            );
            exit::OK
        }
        Err(e) => {
            error!("simulate: {e}");
            e.exit_code()
        }
    }
}

/// The level to open the relay with: `relay.on_boot` at the first start after the machine booted (the kernel's
/// boot id differs from the one saved with the relay state, or none was saved), else `relay.on_start`. When the
/// two policies differ or one is `restore`, the state file is (re)written now with this boot's id, so the next
/// start within this boot counts as a restart even if the relay never switches.
fn start_level(settings: &Settings) -> bool {
    let relay = &settings.relay;
    let needs_state = persist::needs_state(relay.on_start, relay.on_boot);
    let path = app::state_file();
    let saved = if needs_state {
        persist::load_saved(&path).unwrap_or_else(|e| {
            log::warn!(
                "cannot read the saved relay state ({e}); treating this start as the first after a boot"
            );
            None
        })
    } else {
        None
    };
    let boot = persist::boot_id();
    if boot.is_none() && needs_state {
        log::warn!(
            "cannot read the kernel's boot id ({}): relay.on_boot cannot be told from relay.on_start; \
             applying relay.on_start",
            persist::BOOT_ID_FILE
        );
    }
    let (on, kind) = persist::start_level(
        relay.on_start,
        relay.on_boot,
        saved.as_ref(),
        boot.as_deref(),
    );
    let (key, policy) = match kind {
        persist::StartKind::ColdBoot => ("on_boot", relay.on_boot),
        persist::StartKind::Restart => ("on_start", relay.on_start),
    };
    log::info!(
        "relay opens {} ({}: relay.{key} = {})",
        on_off(on),
        match kind {
            persist::StartKind::ColdBoot => "first start since the machine booted",
            persist::StartKind::Restart => "restart within this boot",
        },
        format!("{policy:?}").to_lowercase()
    );
    if needs_state {
        if let Err(e) = persist::save_with_boot(&path, on, boot.as_deref()) {
            log::warn!(
                "cannot save the relay state to {} (needed for relay.on_boot/on_start): {e}",
                path.display()
            );
        }
    }
    on
}

/// The opened relay, which puts itself to `relay.on_stop` when dropped: however the process ends after the relay was
/// opened (a clean stop, a start that fails with exit 69/70, a panic that unwinds), the line is left at `on_stop`
/// and the final level is logged. On a clean stop the core has already applied `on_stop`: writing the same level
/// again is harmless (the write is idempotent).
struct OnStopRelay {
    relay: Box<dyn Relay>,
    on_stop: OnStop,
}

impl Relay for OnStopRelay {
    fn set(&mut self, on: bool) -> Result<(), RelayError> {
        self.relay.set(on)
    }
    fn read_back(&mut self) -> Result<bool, RelayError> {
        self.relay.read_back()
    }
}

impl Drop for OnStopRelay {
    fn drop(&mut self) {
        let target = match self.on_stop {
            OnStop::Off => Some(false),
            OnStop::On => Some(true),
            OnStop::Keep => None,
        };
        if let Some(on) = target {
            if let Err(e) = self.relay.set(on) {
                error!(
                    "exit: cannot put the light {} (relay.on_stop): {e}",
                    on_off(on)
                );
            }
        }
        match self.relay.read_back() {
            Ok(level) => log::info!(
                "exit: relay {} (relay.on_stop = {})",
                on_off(level),
                format!("{:?}", self.on_stop).to_lowercase()
            ),
            Err(e) => error!("exit: cannot read the relay line back: {e}"),
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Open the relay at its start level and prepare the sensor: simulated with `--mock-hardware`, else the Pi's.
/// The relay comes wrapped in [`OnStopRelay`].
fn build_hardware(settings: &Settings, mock_hardware: bool) -> Result<Hardware, hw::pi::HwError> {
    let initial_on = start_level(settings);
    let want_sensor = settings.sensor.source == SensorSource::Bh1750;
    if mock_hardware {
        let clock: Arc<dyn Clock> = mock::clock_for(&settings.mock);
        let (world, sensor, relay) = mock::build(
            &settings.mock,
            &settings.sensor,
            &settings.relay,
            initial_on,
            clock.clone(),
        );
        let relay: Box<dyn Relay> = Box::new(OnStopRelay {
            relay,
            on_stop: settings.relay.on_stop,
        });
        let mut sensor = Some(sensor);
        let factory: app::SensorFactory = Box::new(move || {
            // The simulated chip is always "there" (faults are injected through P/mock/set); hand it out once.
            sensor
                .take()
                .ok_or_else(|| SensorError::Bus("simulated sensor already handed out".into()))
        });
        return Ok(Hardware {
            relay,
            sensor: want_sensor.then_some(factory),
            clock,
            mock: Some(world),
        });
    }
    let relay = hw::pi::open_relay(settings.relay.gpio, settings.relay.active_low, initial_on)?;
    let relay: Box<dyn Relay> = Box::new(OnStopRelay {
        relay,
        on_stop: settings.relay.on_stop,
    });
    let (bus, address) = (settings.sensor.i2c_bus.clone(), settings.sensor.address);
    // A missing or unreadable bus is not fatal: the sensor thread re-probes with backoff and the monitor alerts.
    let factory: app::SensorFactory = Box::new(move || {
        hw::pi::open_sensor(&bus, address).map_err(|e| SensorError::Bus(e.to_string()))
    });
    Ok(Hardware {
        relay,
        sensor: want_sensor.then_some(factory),
        clock: Arc::new(RealClock),
        mock: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// A relay that records its level in a shared cell (0 off, 1 on).
    struct Line(Arc<AtomicU8>);

    impl Relay for Line {
        fn set(&mut self, on: bool) -> Result<(), RelayError> {
            self.0.store(on as u8, Ordering::SeqCst);
            Ok(())
        }
        fn read_back(&mut self) -> Result<bool, RelayError> {
            Ok(self.0.load(Ordering::SeqCst) == 1)
        }
    }

    fn guarded(on_stop: OnStop, level: u8) -> (Box<dyn Relay>, Arc<AtomicU8>) {
        let cell = Arc::new(AtomicU8::new(level));
        let relay = Box::new(OnStopRelay {
            relay: Box::new(Line(cell.clone())),
            on_stop,
        });
        (relay, cell)
    }

    #[test]
    fn dropping_the_relay_applies_on_stop() {
        for (on_stop, start, end) in [
            (OnStop::Off, 1, 0),
            (OnStop::On, 0, 1),
            (OnStop::Keep, 1, 1),
            (OnStop::Keep, 0, 0),
        ] {
            let (relay, cell) = guarded(on_stop, start);
            drop(relay);
            assert_eq!(cell.load(Ordering::SeqCst), end, "{on_stop:?} from {start}");
        }
    }

    #[test]
    fn a_panic_after_the_relay_was_opened_still_applies_on_stop() {
        let (relay, cell) = guarded(OnStop::Off, 1);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _owned = relay;
            panic!("a start that fails halfway");
        }));
        assert!(outcome.is_err());
        assert_eq!(cell.load(Ordering::SeqCst), 0);
    }
}
