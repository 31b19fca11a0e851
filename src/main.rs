//! greenhoused: CLI → configuration → hardware → core loop → exit code.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use log::error;

use greenhoused::app::{self, Hardware};
use greenhoused::cli::{Cli, Command, SimulateArgs};
use greenhoused::config::{self, SensorSource, Settings};
use greenhoused::hw::mock::{self, Clock, RealClock};
use greenhoused::hw::SensorError;
use greenhoused::{exit, hw, logging};

fn main() -> ExitCode {
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

/// Open the relay at its start level and prepare the sensor: simulated with `--mock-hardware`, else the Pi's.
fn build_hardware(settings: &Settings, mock_hardware: bool) -> Result<Hardware, hw::pi::HwError> {
    let initial_on = app::initial_relay_state(settings, &app::state_file());
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
