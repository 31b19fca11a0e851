//! The TOML walk: the text parsed and every entry checked against the declared keys ([`super::keys`]):
//! unknown sections, unknown keys and values of the wrong type are all collected at once (a serde derive would
//! stop at the first). Every key is optional; bounds, syntax and defaults are [`super::validate`]'s.

use std::collections::BTreeSet;

use toml::{Table, Value};

use super::keys::{keys_of, Kind, KEYS, SECTIONS};
use super::Problem;

/// The file as written: each key's value, in [`KEYS`] order, `None` where it is absent or had the wrong type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    values: Vec<Option<Value>>,
    /// Key paths that were present but unusable (wrong type, inf/nan; also `mqtt.url[1]`, `dli.tariff[0].price`):
    /// validation raises no follow-up problems about them (such as a cross-check against a default).
    pub mistyped: BTreeSet<String>,
}

impl RawConfig {
    /// Parses TOML text. A syntax error is the single problem returned (with line and column); otherwise the
    /// raw values are returned together with every unknown-key and wrong-type problem found.
    pub fn parse(text: &str) -> Result<(RawConfig, Vec<Problem>), Problem> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax_problem(text, &e))?;
        let mut problems = Vec::new();
        let raw = RawConfig::from_table(&table, &mut problems);
        Ok((raw, problems))
    }

    /// The value given for `path` (a key of [`KEYS`]), if any and of the right type.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let i = KEYS.iter().position(|k| k.path == path)?;
        self.values.get(i)?.as_ref()
    }

    /// The value given for the `i`-th key of [`KEYS`].
    pub(crate) fn value(&self, i: usize) -> Option<&Value> {
        self.values.get(i)?.as_ref()
    }

    /// Walks a parsed table against [`SECTIONS`] and [`KEYS`], pushing a problem for each unknown or mistyped
    /// entry.
    pub fn from_table(table: &Table, problems: &mut Vec<Problem>) -> RawConfig {
        let first = problems.len();
        let known: Vec<&str> = SECTIONS.iter().map(|s| s.name).collect();
        for (name, value) in table {
            if !known.contains(&name.as_str()) {
                let what = if value.is_table() { "section" } else { "key" };
                problems.push(Problem::new(
                    name.as_str(),
                    format!(
                        "is not a known {what}{} (known sections: {})",
                        suggestion(name, &known, |s| format!("[{s}]")),
                        known.join(", ")
                    ),
                ));
            } else if !value.is_table() {
                problems.push(Problem::new(
                    name.as_str(),
                    format!(
                        "({}) must be a table: write the keys under a [{name}] header, not `{name} = ...`",
                        describe(value)
                    ),
                ));
            }
        }
        let mut values = vec![None; KEYS.len()];
        for section in SECTIONS {
            let Some(entries) = table.get(section.name).and_then(Value::as_table) else {
                continue;
            };
            for (i, key) in KEYS.iter().enumerate() {
                if key.section() != section.name {
                    continue;
                }
                if let Some(value) = entries.get(key.name()) {
                    if check_type(key.path, &key.kind, value, problems) {
                        values[i] = Some(value.clone());
                    }
                }
            }
            let names: Vec<&str> = keys_of(section.name).map(|k| k.name()).collect();
            unknown_keys(
                section.name,
                &format!("[{}]", section.name),
                entries,
                &names,
                problems,
            );
        }
        RawConfig {
            values,
            mistyped: problems[first..].iter().map(|p| p.key.clone()).collect(),
        }
    }
}

/// Checks `value` against `kind` (elements of lists and entries of tables too); false when it cannot be used.
fn check_type(path: &str, kind: &Kind, value: &Value, problems: &mut Vec<Problem>) -> bool {
    match value {
        Value::Float(f) if !f.is_finite() && kind.accepts(value) => {
            problems.push(Problem::new(path, format!("({f}) must be a finite number")));
            return false;
        }
        _ if !kind.accepts(value) => {
            problems.push(wrong_type(path, value, kind.expected()));
            return false;
        }
        _ => {}
    }
    match (kind, value) {
        // A list element of another type only spoils itself (`mqtt.url[1]`); validation skips the list.
        (Kind::TextOrList(_), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_str() {
                    problems.push(wrong_type(
                        &format!("{path}[{i}]"),
                        item,
                        "a string (in quotes)",
                    ));
                }
            }
        }
        (Kind::Tables(fields), Value::Array(items)) => {
            let header = format!("[[{path}]]");
            let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
            for (i, item) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                let Value::Table(entry) = item else {
                    problems.push(wrong_type(
                        &at,
                        item,
                        &format!(
                            "a table of {} (write it as a {header} section)",
                            names.join(", ")
                        ),
                    ));
                    continue;
                };
                for (name, field) in *fields {
                    if let Some(value) = entry.get(*name) {
                        check_type(&format!("{at}.{name}"), field, value, problems);
                    }
                }
                unknown_keys(&at, &header, entry, &names, problems);
            }
        }
        _ => {}
    }
    true
}

fn wrong_type(path: &str, value: &Value, expected: &str) -> Problem {
    Problem::new(
        path,
        format!(
            "({}) must be {expected}, not {}",
            describe(value),
            kind(value)
        ),
    )
}

/// Reports every key of `table` (the section or entry at `path`, written as `header`) not among `known`.
fn unknown_keys(
    path: &str,
    header: &str,
    table: &Table,
    known: &[&str],
    problems: &mut Vec<Problem>,
) {
    for key in table.keys() {
        if !known.contains(&key.as_str()) {
            problems.push(Problem::new(
                format!("{path}.{key}"),
                format!(
                    "is not a known key{} (known keys in {header}: {})",
                    suggestion(key, known, |k| format!("{path}.{k}")),
                    known.join(", ")
                ),
            ));
        }
    }
}

/// `; did you mean X?` when a known name is within a small edit distance of `name`.
fn suggestion(name: &str, known: &[&str], show: impl Fn(&str) -> String) -> String {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean {}?", show(k)))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A short rendering of a value for messages (long strings and tables abbreviated).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 60 => {
            format!("{:?}…", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "[...]".to_string(),
        Value::Table(_) => "{...}".to_string(),
        other => other.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date/time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let position = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    Problem::new(
        "",
        format!("TOML syntax error{position}: {}", e.message().trim_end()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (RawConfig, Vec<Problem>) {
        match RawConfig::parse(text) {
            Ok(r) => r,
            Err(p) => panic!("unexpected syntax error: {p}"),
        }
    }

    fn keys(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn empty_text_is_all_none_and_no_problems() {
        let (raw, problems) = parse("");
        assert!(KEYS.iter().all(|k| raw.get(k.path).is_none()));
        assert!(raw.mistyped.is_empty());
        assert!(problems.is_empty());
    }

    #[test]
    fn every_declared_key_is_read() {
        // Each key at its default (of its own type) is read back as given.
        let mut text = String::new();
        for section in SECTIONS {
            text.push_str(&format!("[{}]\n", section.name));
            for k in keys_of(section.name) {
                if !matches!(k.kind, Kind::Tables(_)) {
                    text.push_str(&format!("{} = {}\n", k.name(), k.kind.default_value()));
                }
            }
        }
        text.push_str("[[dli.tariff]]\nfrom = \"07:00\"\nto = \"08:00\"\nprice = 1\n");
        let (raw, problems) = parse(&text);
        assert!(problems.is_empty(), "{problems:?}");
        for k in KEYS {
            assert!(raw.get(k.path).is_some(), "{} not read", k.path);
        }
        assert_eq!(raw.get("sensor.address"), Some(&Value::Integer(0x23)));
        assert_eq!(raw.get("nope.key"), None);
    }

    #[test]
    fn unknown_keys_and_sections_are_all_reported_with_suggestions() {
        let text = r#"
            top = 1
            [mqtt]
            pasword_file = "x"
            qos = 1
            [sensors]
            address = 0x23
            [control]
            colour = "red"
        "#;
        let (_, problems) = parse(text);
        let k = keys(&problems);
        assert_eq!(problems.len(), 4, "{problems:?}");
        for expected in ["top", "sensors", "mqtt.pasword_file", "control.colour"] {
            assert!(k.contains(&expected), "{expected} missing from {k:?}");
        }
        let typo = problems.iter().find(|p| p.key == "mqtt.pasword_file");
        assert!(typo.is_some_and(|p| p.reason.contains("did you mean mqtt.password_file?")));
        let section = problems.iter().find(|p| p.key == "sensors");
        assert!(section.is_some_and(|p| p.reason.contains("did you mean [sensor]?")));
    }

    #[test]
    fn wrong_types_are_all_reported() {
        let text = r#"
            [mqtt]
            qos = "1"
            keepalive_s = 30.5
            [relay]
            active_low = "yes"
            gpio = 17
            [control]
            on_below_lux = "450"
            window = 6
            [mock]
            ambient = true
        "#;
        let (raw, problems) = parse(text);
        let k = keys(&problems);
        assert_eq!(
            k,
            vec![
                "mqtt.keepalive_s",
                "mqtt.qos",
                "relay.active_low",
                "control.on_below_lux",
                "control.window",
                "mock.ambient"
            ]
        );
        assert_eq!(raw.get("relay.gpio"), Some(&Value::Integer(17)));
        assert_eq!(raw.get("mqtt.qos"), None);
        assert!(raw.mistyped.contains("mqtt.qos"));
        assert_eq!(
            problems[1].to_string(),
            "mqtt.qos (\"1\") must be a whole number, not a string"
        );
    }

    #[test]
    fn section_that_is_not_a_table_is_a_problem() {
        let (_, problems) = parse("mqtt = 3\n");
        assert_eq!(keys(&problems), vec!["mqtt"]);
        assert!(problems[0].reason.contains("[mqtt]"));
    }

    #[test]
    fn infinite_and_nan_are_rejected() {
        let (raw, problems) = parse("[sensor]\ninterval_s = inf\nstale_after_s = nan\n");
        assert_eq!(
            keys(&problems),
            vec!["sensor.interval_s", "sensor.stale_after_s"]
        );
        assert_eq!(raw.get("sensor.interval_s"), None);
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let text = "[mqtt]\nqos = 1\nurl = \"unterminated\n";
        let p = match RawConfig::parse(text) {
            Err(p) => p,
            Ok(r) => panic!("expected a syntax error, got {r:?}"),
        };
        assert!(p.key.is_empty());
        assert!(
            p.reason.starts_with("TOML syntax error at line 3, column"),
            "{p}"
        );
    }

    #[test]
    fn list_elements_and_table_entries_are_type_checked() {
        let (raw, problems) = parse(
            "[mqtt]\nurl = [\"mqtt://a\", 3]\n\
             [[dli.tariff]]\nfrom = 7\nto = \"08:00\"\nprice = \"1\"\ncost = 2\n",
        );
        assert_eq!(
            keys(&problems),
            vec![
                "mqtt.url[1]",
                "dli.tariff[0].from",
                "dli.tariff[0].price",
                "dli.tariff[0].cost"
            ]
        );
        assert!(problems[3]
            .reason
            .contains("known keys in [[dli.tariff]]: from, to, price"));
        // The lists themselves are kept (their good parts are still checked by validation).
        assert!(raw.get("mqtt.url").is_some());
        let (_, problems) = parse("[dli]\ntariff = [1, {from = \"07:00\"}]\n");
        assert_eq!(keys(&problems), vec!["dli.tariff[0]"]);
        let (_, problems) = parse("[dli]\ntariff = \"07:00-08:00\"\n");
        assert_eq!(keys(&problems), vec!["dli.tariff"]);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("qos", "qos"), 0);
        assert_eq!(edit_distance("pasword_file", "password_file"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}
