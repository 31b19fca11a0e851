//! `greenhoused simulate` through the real binary: weather-file errors (exit 78 with the line and the reason),
//! command-line errors, and a two-day run on a small trace checked against figures worked out by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn greenhoused(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenhoused"))
        .args(args)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("run greenhoused")
}

/// A temporary directory with the configuration and whatever the test writes.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = Dir { dir };
        // Defaults (450/550 lx, 60 s dwell, window 06:00-22:00, learned lamp), one reading a second.
        d.write(
            "greenhoused.toml",
            "[device]\nid = \"sim\"\n[sensor]\ninterval_s = 1.0\n[mock]\nlamp_lux = 400\n",
        );
        d
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn simulate(&self, extra: &[&str]) -> Output {
        let (cfg, out) = (self.s("greenhoused.toml"), self.s("out"));
        let mut args = vec!["simulate", "-c", &cfg, "--out", &out];
        args.extend_from_slice(extra);
        greenhoused(&args)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Sunlight of one test day, hourly: dark until 05:00, dawn, 20 klx from 08:00 to 17:00, dusk, dark from 22:00.
const HOURLY: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 50.0, 200.0, 1000.0, 20e3, 20e3, 20e3, 20e3, 20e3, 20e3, 20e3, 20e3,
    20e3, 20e3, 3000.0, 300.0, 100.0, 20.0, 0.0, 0.0,
];

/// Three days of [`HOURLY`] from 2024-06-01 00:00 to 2024-06-04 00:00.
fn trace() -> String {
    let mut s = String::from("time,lux\n");
    for day in 1..=3 {
        for (h, lux) in HOURLY.iter().enumerate() {
            s.push_str(&format!("2024-06-{day:02}T{h:02}:00:00,{lux}\n"));
        }
    }
    s.push_str("2024-06-04T00:00:00,0\n");
    s
}

/// ∫ lux dt over one light-day (06:00 to 06:00) of the trace, by trapezoids over the hourly rows.
fn light_day_lux_s() -> f64 {
    (6..30)
        .map(|h| (HOURLY[h % 24] + HOURLY[(h + 1) % 24]) / 2.0 * 3600.0)
        .sum()
}

#[test]
fn bad_weather_files_exit_78_naming_the_line_and_the_reason() {
    let d = Dir::new();
    let cases: &[(&str, &str, &str)] = &[
        ("", "", "empty"),
        (
            "when,lux\n2024-06-01T00:00:00,0\n",
            "line 1",
            "header must be `time,lux`",
        ),
        (
            "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T01:00:00,abc\n",
            "line 3",
            "`abc` is not a number",
        ),
        (
            "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T01:00:00,-3\n",
            "line 3",
            "negative",
        ),
        (
            "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T02:00:00,5\n2024-06-01T01:00:00,5\n",
            "line 4",
            "ascending",
        ),
        (
            "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T00:00:00,5\n",
            "line 3",
            "duplicate time",
        ),
        (
            "time,lux\n2024-06-01T00:00:00,0\n2024-06-01 01:00,5\n",
            "line 3",
            "bad time",
        ),
        ("time,lux\n", "line 1", "no data rows"),
    ];
    for (text, line, reason) in cases {
        let f = d.write("w.csv", text);
        let o = d.simulate(&["--weather", &f.display().to_string()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(78), "{text:?}: {err}");
        assert!(
            err.contains(&f.display().to_string()),
            "names the file: {err}"
        );
        assert!(err.contains(line), "{text:?}: expected {line:?} in {err}");
        assert!(
            err.contains(reason),
            "{text:?}: expected {reason:?} in {err}"
        );
        assert!(
            !d.path("out/report.json").exists(),
            "no report for a bad file"
        );
    }
    let o = d.simulate(&["--weather", &d.s("missing.csv")]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read it"), "{}", stderr(&o));
}

#[test]
fn dates_outside_the_trace_and_bad_options_are_errors() {
    let d = Dir::new();
    let w = d.write("w.csv", &trace()).display().to_string();
    // Light-days start at 06:00: the trace holds two whole ones (06-01 and 06-02).
    let o = d.simulate(&["--weather", &w, "--days", "3"]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--days 3") && stderr(&o).contains("2 whole light-days fit"),
        "{}",
        stderr(&o)
    );
    let o = d.simulate(&["--weather", &w, "--from", "2024-05-31"]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("--from 2024-05-31"), "{}", stderr(&o));
    let o = d.simulate(&["--weather", &w, "--from", "2024-06-03"]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    // Command-line syntax errors are clap's (exit 2) and name the option.
    for (args, what) in [
        (&["--days", "0"][..], "--days"),
        (&["--from", "2024-13-01"], "--from"),
        (&["--strategy", "fastest"], "--strategy"),
    ] {
        let o = d.simulate(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(what), "{args:?}: {}", stderr(&o));
    }
    // A configuration error is still exit 78.
    d.write("greenhoused.toml", "[sensor]\ninterval_s = -1\n");
    let o = d.simulate(&["--weather", &w]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("sensor.interval_s"), "{}", stderr(&o));
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {v}"))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("report.json")).expect("valid JSON")
}

#[test]
fn a_two_day_run_on_a_trace_gives_the_report_of_the_spec() {
    let d = Dir::new();
    let w = d.write("w.csv", &trace()).display().to_string();
    // The trace from `mock.weather`; a 200 W lamp, cheaper from 18:00 to 23:00.
    d.write(
        "greenhoused.toml",
        &format!(
            "[device]\nid = \"sim\"\n[sensor]\ninterval_s = 1.0\n[mock]\nlamp_lux = 400\nweather = {w:?}\n\
             [dli]\nlamp_watts = 200\ndefault_price = 0.25\n[[dli.tariff]]\nfrom = \"18:00\"\nto = \"23:00\"\nprice = 0.1\n"
        ),
    );
    let o = d.simulate(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary = stderr(&o);
    assert!(
        summary.contains("simulated 2 light-days") && summary.contains("simulated s per wall s"),
        "{summary}"
    );

    let report = read_json(&d.path("out/report.json"));
    assert_eq!(keys(&report), ["days", "threshold_rule", "totals"]);
    let day_keys = [
        "alerts",
        "cost",
        "date",
        "dli_mol",
        "lamp_kwh",
        "lamp_on_s",
        "lamp_s_outside_window",
        "longest_dark_h",
        "switches",
        "target_mol",
    ];
    let days = report["days"].as_array().expect("days");
    assert_eq!(days.len(), 2);
    let sun_mol = light_day_lux_s() * 0.0185 / 1e6;
    for (day, date) in days.iter().zip(["2024-06-01", "2024-06-02"]) {
        assert_eq!(keys(day), day_keys, "{day}");
        assert_eq!(keys(&day["dli_mol"]), ["lamp", "sun", "total"]);
        assert_eq!(day["date"], date);
        // Lamp on at 06:00 (200 lx) until the dawn passes 550 lx (06:26), on again when the dusk falls below
        // 450 lx (18:57) until the window closes at 22:00: four switches, about 3.5 h.
        assert_eq!(day["switches"], 4, "{day}");
        let on = f(day, "lamp_on_s");
        assert!((3.3 * 3600.0..3.7 * 3600.0).contains(&on), "{day}");
        assert_eq!(f(day, "lamp_s_outside_window"), 0.0, "{day}");
        // The longest dark stretch is the day's, 06:26 to 18:57.
        let dark = f(day, "longest_dark_h");
        assert!((12.3..12.7).contains(&dark), "{day}");
        // The core's DLI engine integrates its readings: within 1 % of the trace's exact integral.
        let sun = f(&day["dli_mol"], "sun");
        assert!((sun - sun_mol).abs() < 0.01 * sun_mol, "{day}: {sun_mol}");
        // The lamp's PPFD is estimated from its learned lux (the mock's lamp adds 400) × 0.0135 µmol/s per lux.
        let lamp = f(&day["dli_mol"], "lamp");
        let expected = on * 400.0 * 0.0135 / 1e6;
        assert!(
            (lamp - expected).abs() < 0.05 * expected + 0.001,
            "{day}: {expected}"
        );
        assert_eq!(day["alerts"], Value::Array(vec![]), "{day}");
        let kwh = f(day, "lamp_kwh");
        assert!((kwh - on * 200.0 / 3.6e6).abs() < 1e-3, "{day}");
        // Most lamp time is in the evening at 0.1, the dawn part at 0.25.
        let cost = f(day, "cost");
        assert!(cost > kwh * 0.1 && cost < kwh * 0.2, "{day}");
    }
    let totals = &report["totals"];
    assert_eq!(totals["days"], 2);
    assert_eq!(totals["switches"], 8);
    assert!(
        (f(totals, "lamp_on_s") - f(&days[0], "lamp_on_s") - f(&days[1], "lamp_on_s")).abs() < 0.2
    );
    let threshold = &report["threshold_rule"];
    assert_eq!(keys(threshold), ["days", "totals"]);
    for day in threshold["days"].as_array().expect("threshold days") {
        assert_eq!(keys(day), day_keys);
        assert_eq!(f(day, "lamp_s_outside_window"), 0.0);
    }

    let csv = std::fs::read_to_string(d.path("out/days.csv")).expect("days.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("run,date,dli_mol,"));
    assert!(lines[1].starts_with("threshold,2024-06-01,"), "{csv}");
    assert!(lines[4].starts_with("threshold_rule,2024-06-02,"), "{csv}");

    let svg = std::fs::read_to_string(d.path("out/chart.svg")).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("plain threshold rule"));
    // Two lamp periods a day, in each of the two pictures.
    assert_eq!(svg.matches("fill-opacity=\"0.35\"").count(), 8);
    // No external assets: the only URL is the SVG namespace.
    assert_eq!(svg.matches("http").count(), 1, "{svg}");
    assert!(!svg.contains("href"));
}

#[test]
fn the_day_model_is_deterministic_and_needs_no_trace() {
    let d = Dir::new();
    d.write(
        "greenhoused.toml",
        "[device]\nid = \"sim\"\n[sensor]\ninterval_s = 5.0\n[mock]\nlamp_lux = 400\n",
    );
    let run = |out: &str| {
        let (cfg, out) = (d.s("greenhoused.toml"), d.s(out));
        let o = greenhoused(&[
            "simulate",
            "-c",
            &cfg,
            "--from",
            "2024-03-10",
            "--days",
            "1",
            "--out",
            &out,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read_to_string(Path::new(&out).join("report.json")).expect("report.json")
    };
    let (a, b) = (run("a"), run("b"));
    assert_eq!(a, b, "the same date gives the same clouds and the same run");
    let report: Value = serde_json::from_str(&a).expect("JSON");
    let day = &report["days"][0];
    assert_eq!(day["date"], "2024-03-10");
    // The model's day: 90 klx at noon under clouds, ≈ 40 mol of sunlight; the lamp at dawn and dusk.
    let sun = f(&day["dli_mol"], "sun");
    assert!((25.0..55.0).contains(&sun), "{day}");
    assert!(day["switches"].as_u64().is_some_and(|n| n >= 2), "{day}");
    assert_eq!(f(day, "lamp_s_outside_window"), 0.0, "{day}");
}

/// The `days.csv` rows of one run as maps from column name to value.
fn csv_rows(text: &str, run: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .filter(|l| l.starts_with(&format!("{run},")))
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn the_dli_strategy_reports_the_cores_daily_figures_which_agree_with_the_exact_integral() {
    let d = Dir::new();
    let w = d.write("w.csv", &trace()).display().to_string();
    d.write(
        "greenhoused.toml",
        "[device]\nid = \"sim\"\n[sensor]\ninterval_s = 2.0\n[control]\nstrategy = \"dli\"\n\
         [mock]\nlamp_lux = 400\n[dli]\ntarget_mol = 20\nlamp_ppfd = 150\nlamp_watts = 100\ndefault_price = 0.3\n",
    );
    let o = d.simulate(&["--weather", &w]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = read_json(&d.path("out/report.json"));
    let csv = std::fs::read_to_string(d.path("out/days.csv")).expect("days.csv");
    for run in ["dli", "threshold_rule"] {
        let rows = csv_rows(&csv, run);
        assert_eq!(rows.len(), 2, "{csv}");
        for row in rows {
            let num =
                |k: &str| -> f64 { row[k].parse().unwrap_or_else(|_| panic!("{k} in {row:?}")) };
            // The figures are the core's P/report/daily; the simulator's exact integral agrees within 1 %.
            assert_eq!(row["figures_from"], "core", "{row:?}");
            let (sun, exact_sun) = (num("sun_mol"), num("exact_sun_mol"));
            assert!(
                (sun - exact_sun).abs() <= 0.01 * exact_sun,
                "{run}: sun {sun} vs {exact_sun}"
            );
            let (lamp, exact_lamp) = (num("lamp_mol"), num("exact_lamp_mol"));
            assert!(
                (lamp - exact_lamp).abs() <= 0.01 * exact_lamp.max(0.1),
                "{run}: lamp {lamp} vs {exact_lamp}"
            );
            assert_eq!(num("target_mol"), 20.0);
            assert_eq!(num("lamp_s_outside_window"), 0.0);
            // 100 W at 0.3 per kWh.
            let kwh = num("lamp_kwh");
            assert!(
                (kwh - num("lamp_on_s") * 100.0 / 3.6e6).abs() < 0.01,
                "{row:?}"
            );
            assert!((num("cost") - kwh * 0.3).abs() < 0.01, "{row:?}");
        }
    }
    // The sun gives ≈ 15.7 mol a day here; the DLI strategy adds what the target needs (the threshold rule
    // only lights dawn and dusk), and says so in the report.
    for day in report["days"].as_array().expect("days") {
        let total = f(&day["dli_mol"], "total");
        assert!(total >= 20.0 * 0.98, "{day}");
    }
    let threshold_total = f(&report["threshold_rule"]["totals"]["dli_mol"], "total");
    assert!(threshold_total < 2.0 * 20.0 * 0.95, "{report}");
}
