//! Keeps the configuration reference (docs/configuration.md and its Chinese translation)
//! and the example file in step with the code. The keys and their defaults come from
//! `ConfigLayer` and `ServiceDefinition` through serde, and the environment variables
//! from the clap definition, so a key added to the code fails these tests until its row
//! is written.
//!
//! The reference's tables follow these conventions:
//! - A row whose first cell is one code span documents a key. A row of five cells is a
//!   server setting: key, environment variable, default, unit, meaning. A row of three
//!   cells is a key of a `[[services]]` table: key, default, meaning.
//! - A default is a TOML value in a code span, where `""` is the empty string. A key that
//!   is unset unless configured has `—`. An array of tables has prose, and a `toml` block
//!   of the page shows its default.
//! - A `[[services]]` key without a default has the page's word for "required".

use std::collections::{BTreeMap, BTreeSet};

use cas_core::registry::ServiceDefinition;
use cas_server::cli::Cli;
use cas_server::config::{Config, ConfigLayer};
use clap::CommandFactory;
use serde_json::{Map, Value};

/// Marker of a key that is unset unless configured.
const UNSET: &str = "—";

/// One language version of the reference.
struct Reference {
    path: &'static str,
    text: &'static str,
    /// Default cell of a `[[services]]` key that has no default.
    required: &'static str,
    /// Unit cell of a `*_seconds` key.
    seconds: &'static str,
}

const REFERENCES: [Reference; 2] = [
    Reference {
        path: "docs/configuration.md",
        text: include_str!("../../docs/configuration.md"),
        required: "required",
        seconds: "seconds",
    },
    Reference {
        path: "docs/configuration.zh-CN.md",
        text: include_str!("../../docs/configuration.zh-CN.md"),
        required: "必填",
        seconds: "秒",
    },
];

const EXAMPLE_PATH: &str = "server/cas-server.example.toml";
const EXAMPLE: &str = include_str!("../cas-server.example.toml");

/// A documented key: its name and the cells after the key cell.
struct Row {
    key: String,
    cells: Vec<String>,
}

/// The key rows and `toml` blocks of one reference page.
struct Page {
    settings: Vec<Row>,
    service_keys: Vec<Row>,
    toml_blocks: Vec<String>,
}

impl Page {
    fn parse(text: &str) -> Self {
        let mut page = Page {
            settings: Vec::new(),
            service_keys: Vec::new(),
            toml_blocks: Vec::new(),
        };
        let mut block: Option<(bool, String)> = None;

        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(fence) = trimmed.strip_prefix("```") {
                match block.take() {
                    Some((true, body)) => page.toml_blocks.push(body),
                    Some((false, _)) => {}
                    None => block = Some((fence.trim() == "toml", String::new())),
                }
                continue;
            }
            if let Some((_, body)) = block.as_mut() {
                body.push_str(line);
                body.push('\n');
                continue;
            }

            let Some(row) = key_row(trimmed) else {
                continue;
            };
            match row.cells.len() {
                4 => page.settings.push(row),
                2 => page.service_keys.push(row),
                _ => {}
            }
        }
        page
    }
}

/// Splits a table row into cells, keeping `\|` inside a cell, and returns it when its
/// first cell is one code span.
fn key_row(line: &str) -> Option<Row> {
    let inner = line.strip_prefix('|')?.strip_suffix('|')?;
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    cells.push(cell.trim().to_owned());

    let key = code_span(&cells[0])?.to_owned();
    Some(Row {
        key,
        cells: cells.split_off(1),
    })
}

/// Returns the content of a cell that is exactly one code span.
fn code_span(cell: &str) -> Option<&str> {
    let content = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!content.contains('`')).then_some(content)
}

fn as_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected a JSON object, got {other}"),
    }
}

/// Returns every server setting of `ConfigLayer` and its built-in default, `null` when unset.
fn setting_defaults() -> BTreeMap<String, Value> {
    let keys = as_object(serde_json::to_value(ConfigLayer::default()).expect("serialize"));
    let defaults = as_object(serde_json::to_value(ConfigLayer::defaults()).expect("serialize"));

    keys.into_iter()
        .map(|(key, _)| {
            let default = defaults.get(&key).cloned().unwrap_or(Value::Null);
            (key, default)
        })
        .collect()
}

/// Returns every `[[services]]` key with the value serde fills in when it is left out,
/// or `None` when leaving it out is an error.
fn service_key_defaults() -> BTreeMap<String, Option<Value>> {
    let complete =
        as_object(serde_json::to_value(ServiceDefinition::default()).expect("serialize"));

    complete
        .keys()
        .map(|key| {
            let mut without = complete.clone();
            without.remove(key);
            let default = serde_json::from_value::<ServiceDefinition>(Value::Object(without))
                .ok()
                .map(|parsed| {
                    as_object(serde_json::to_value(parsed).expect("serialize"))[key].clone()
                });
            (key.clone(), default)
        })
        .collect()
}

/// Returns the environment variable of each setting that has a command-line flag. The
/// flag's name is the key with `-` for `_`.
fn environment_variables() -> BTreeMap<String, String> {
    let command = Cli::command();
    let run = command.find_subcommand("run").expect("the run subcommand");

    run.get_arguments()
        .filter_map(|arg| {
            let key = arg.get_long()?.replace('-', "_");
            let variable = arg.get_env()?.to_str()?.to_owned();
            Some((key, variable))
        })
        .collect()
}

fn names(keys: &[String]) -> String {
    keys.iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares the documented keys with the code's and describes any difference.
fn key_problems(
    path: &str,
    kind_of_key: &str,
    documented: &[Row],
    code: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut repeated = Vec::new();
    for row in documented {
        if !seen.insert(row.key.clone()) {
            repeated.push(row.key.clone());
        }
    }

    let missing: Vec<String> = code.difference(&seen).cloned().collect();
    let stale: Vec<String> = seen.difference(code).cloned().collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{path} has no row for these {kind_of_key}; add one to the table of its group: {}",
            names(&missing)
        ));
    }
    if !stale.is_empty() {
        problems.push(format!(
            "{path} documents these {kind_of_key}, which the code does not have: {}",
            names(&stale)
        ));
    }
    if !repeated.is_empty() {
        problems.push(format!(
            "{path} has more than one row for: {}",
            names(&repeated)
        ));
    }
    problems
}

fn assert_no_problems(summary: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{summary}:\n  {}",
        problems.join("\n  ")
    );
}

/// Parses `key = value` as a server setting and returns the value as JSON.
fn documented_setting(key: &str, value: &str) -> Result<Value, String> {
    let layer = ConfigLayer::from_toml_str(&format!("{key} = {value}"))?;
    let fields = as_object(serde_json::to_value(layer).map_err(|error| error.to_string())?);
    Ok(fields.get(key).cloned().unwrap_or(Value::Null))
}

/// Parses a TOML value on its own and returns it as JSON.
fn documented_value(value: &str) -> Result<Value, String> {
    let table: toml::Table =
        toml::from_str(&format!("value = {value}")).map_err(|error| error.to_string())?;
    serde_json::to_value(&table["value"]).map_err(|error| error.to_string())
}

fn is_array_of_tables(value: &Value) -> bool {
    matches!(value, Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty())
}

/// Returns whether one `toml` block of the page sets `key` to `default`.
fn block_shows_default(page: &Page, key: &str, default: &Value) -> bool {
    page.toml_blocks.iter().any(|block| {
        let Ok(layer) = ConfigLayer::from_toml_str(block) else {
            return false;
        };
        let fields = as_object(serde_json::to_value(layer).expect("serialize"));
        fields.get(key) == Some(default)
    })
}

/// Checks the default cell of one server setting.
fn setting_default_problem(page: &Page, path: &str, row: &Row, default: &Value) -> Option<String> {
    let cell = row.cells[1].as_str();
    let key = row.key.as_str();

    if let Some(value) = code_span(cell) {
        return match documented_setting(key, value) {
            Ok(documented) if documented == *default => None,
            Ok(documented) => Some(format!(
                "{path}: `{key}` documents the default {documented}, but the code has {default}"
            )),
            Err(error) => Some(format!(
                "{path}: `{key}` has a default that is not valid TOML for it ({value}): {error}"
            )),
        };
    }
    if cell == UNSET {
        return (!default.is_null()).then(|| {
            format!(
                "{path}: `{key}` is documented as unset, but the code has the default {default}"
            )
        });
    }
    if is_array_of_tables(default) {
        return (!block_shows_default(page, key, default)).then(|| {
            format!("{path}: no `toml` block shows the default of `{key}`, which the code has as {default}")
        });
    }
    Some(format!(
        "{path}: `{key}` has the default cell {cell:?}; write a TOML value in a code span or {UNSET}, the code has {default}"
    ))
}

#[test]
fn reference_lists_every_setting() {
    let code: BTreeSet<String> = setting_defaults().into_keys().collect();
    let mut problems = Vec::new();

    for reference in &REFERENCES {
        let page = Page::parse(reference.text);
        problems.extend(key_problems(
            reference.path,
            "settings",
            &page.settings,
            &code,
        ));
    }

    assert_no_problems(
        "the configuration reference and ConfigLayer disagree",
        &problems,
    );
}

#[test]
fn reference_defaults_match_code() {
    let defaults = setting_defaults();
    let mut problems = Vec::new();

    for reference in &REFERENCES {
        let page = Page::parse(reference.text);
        for row in &page.settings {
            let Some(default) = defaults.get(&row.key) else {
                continue;
            };
            problems.extend(setting_default_problem(&page, reference.path, row, default));
        }
    }

    assert_no_problems(
        "documented defaults differ from ConfigLayer::defaults()",
        &problems,
    );
}

#[test]
fn reference_variables_match_cli() {
    let variables = environment_variables();
    let mut problems = Vec::new();

    for (key, variable) in &variables {
        let expected = format!("CAS_{}", key.to_uppercase());
        if *variable != expected {
            problems.push(format!(
                "cli.rs: --{} reads {variable}, but the reference's rule gives {expected}",
                key.replace('_', "-")
            ));
        }
    }
    for reference in &REFERENCES {
        let page = Page::parse(reference.text);
        for row in &page.settings {
            let documented = code_span(&row.cells[0]).unwrap_or(&row.cells[0]);
            let actual = variables.get(&row.key).map_or(UNSET, String::as_str);
            if documented != actual {
                problems.push(format!(
                    "{}: `{}` documents the variable {documented}, but cli.rs has {actual}",
                    reference.path, row.key
                ));
            }
        }
    }

    assert_no_problems(
        "documented environment variables differ from cli.rs",
        &problems,
    );
}

#[test]
fn reference_units_of_seconds() {
    let mut problems = Vec::new();

    for reference in &REFERENCES {
        let page = Page::parse(reference.text);
        for row in page
            .settings
            .iter()
            .filter(|row| row.key.ends_with("_seconds"))
        {
            if row.cells[2] != reference.seconds {
                problems.push(format!(
                    "{}: `{}` has the unit {:?}, expected {:?}",
                    reference.path, row.key, row.cells[2], reference.seconds
                ));
            }
        }
    }

    assert_no_problems(
        "keys ending in _seconds must have the unit seconds",
        &problems,
    );
}

#[test]
fn reference_lists_every_service_key() {
    let defaults = service_key_defaults();
    let code: BTreeSet<String> = defaults.keys().cloned().collect();
    let mut problems = Vec::new();

    for reference in &REFERENCES {
        let page = Page::parse(reference.text);
        problems.extend(key_problems(
            reference.path,
            "[[services]] keys",
            &page.service_keys,
            &code,
        ));

        for row in &page.service_keys {
            let Some(default) = defaults.get(&row.key) else {
                continue;
            };
            let cell = row.cells[0].as_str();
            let documented = match (cell, code_span(cell)) {
                (_, Some(value)) => documented_value(value).map(Some),
                (UNSET, None) => Ok(Some(Value::Null)),
                (word, None) if word == reference.required => Ok(None),
                (other, None) => Err(format!("unknown default cell {other:?}")),
            };
            match documented {
                Ok(documented) if documented == *default => {}
                Ok(documented) => problems.push(format!(
                    "{}: [[services]] key `{}` documents the default {}, but the code has {}",
                    reference.path,
                    row.key,
                    describe_service_default(documented.as_ref(), reference.required),
                    describe_service_default(default.as_ref(), reference.required),
                )),
                Err(error) => problems.push(format!(
                    "{}: [[services]] key `{}`: {error}",
                    reference.path, row.key
                )),
            }
        }
    }

    assert_no_problems(
        "the [[services]] keys table and ServiceDefinition disagree",
        &problems,
    );
}

fn describe_service_default(default: Option<&Value>, required: &str) -> String {
    default.map_or_else(|| required.to_owned(), Value::to_string)
}

#[test]
fn reference_toml_blocks_are_valid() {
    let mut problems = Vec::new();

    for reference in &REFERENCES {
        let page = Page::parse(reference.text);
        for (index, block) in page.toml_blocks.iter().enumerate() {
            let checked = ConfigLayer::from_toml_str(block).and_then(|layer| {
                Config::from_layer(ConfigLayer::defaults().overridden_by(layer))
                    .map_err(|error| error.to_string())
            });
            if let Err(error) = checked {
                problems.push(format!(
                    "{}: toml block {} is not a valid configuration: {error}",
                    reference.path,
                    index + 1
                ));
            }
        }
    }

    assert_no_problems("a TOML example in the reference is invalid", &problems);
}

#[test]
fn example_file_has_every_setting() {
    let example: toml::Table = toml::from_str(EXAMPLE).expect("the example file is valid TOML");
    let mut missing = Vec::new();

    for (key, default) in setting_defaults() {
        // TOML has no null, so a key that is unset by default appears commented out.
        let commented = format!("# {key} = ");
        let present = example.contains_key(&key)
            || (default.is_null() && EXAMPLE.lines().any(|line| line.starts_with(&commented)));
        if !present {
            missing.push(key);
        }
    }

    assert!(
        missing.is_empty(),
        "{EXAMPLE_PATH} does not show these keys (a key unset by default may appear as `# key = …`): {}",
        names(&missing)
    );
}
