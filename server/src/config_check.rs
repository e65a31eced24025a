//! `check-config` and `print-config`: every problem of a merged configuration, each
//! naming its key, and the effective settings with passwords hidden.

use serde_json::{Map, Value};

use crate::config::{Config, ConfigLayer};

/// Returns every problem of `layer`, which is the merge of all layers, or nothing when it
/// is valid. Each setting is checked alone over the defaults, so one bad key does not
/// hide the next. Then the whole layer is checked for problems that involve several keys.
pub fn problems(layer: &ConfigLayer) -> Vec<String> {
    let mut found = Vec::new();
    for (key, value) in set_keys(layer) {
        let Some(single) = single_key_layer(&key, value) else {
            continue;
        };
        if let Err(error) = Config::from_layer(ConfigLayer::defaults().overridden_by(single)) {
            push_once(&mut found, error.to_string());
        }
    }

    if let Err(error) = Config::from_layer(layer.clone()) {
        push_once(&mut found, error.to_string());
    }
    found
}

/// Returns the merged settings as TOML, with the passwords in `database_url` and
/// `redis_url` replaced by `<redacted>`.
pub fn printable(layer: &ConfigLayer) -> String {
    let mut redacted = layer.clone();
    redacted.database_url = redacted.database_url.as_deref().map(redact_url_password);
    redacted.redis_url = redacted.redis_url.as_deref().map(redact_url_password);

    toml::to_string(&redacted)
        .unwrap_or_else(|error| format!("# cannot print the settings: {error}\n"))
}

/// Returns the keys that `layer` sets, with their values.
fn set_keys(layer: &ConfigLayer) -> Vec<(String, Value)> {
    let Ok(Value::Object(map)) = serde_json::to_value(layer) else {
        return Vec::new();
    };
    map.into_iter()
        .filter(|(_, value)| !value.is_null())
        .collect()
}

fn single_key_layer(key: &str, value: Value) -> Option<ConfigLayer> {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    serde_json::from_value(Value::Object(map)).ok()
}

fn push_once(found: &mut Vec<String>, problem: String) {
    if !found.contains(&problem) {
        found.push(problem);
    }
}

/// Replaces the password of a `scheme://user:password@host` URL.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(toml: &str) -> ConfigLayer {
        ConfigLayer::defaults().overridden_by(ConfigLayer::from_toml_str(toml).expect("valid TOML"))
    }

    #[test]
    fn defaults_have_no_problems() {
        assert!(problems(&ConfigLayer::defaults()).is_empty());
    }

    #[test]
    fn every_bad_key_is_reported() {
        let found = problems(&layer(
            "listen = \"nowhere\"\nbase_path = \"cas\"\nservice_ticket_ttl_seconds = 0\n",
        ));

        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|p| p.contains("listen")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("base_path")), "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.contains("service_ticket_ttl_seconds")),
            "{found:?}"
        );
    }

    #[test]
    fn combined_problems_are_reported() {
        let found = problems(&layer("ticket_store = \"redis\"\n"));

        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("redis_url"), "{found:?}");
    }

    #[test]
    fn printed_settings_hide_passwords() {
        let text = printable(&layer(
            "database_url = \"mysql://cas:s3cret@db.example:3306/cas\"\nredis_url = \"redis://:hunter2@127.0.0.1:6379\"\n",
        ));

        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("mysql://cas:<redacted>@db.example:3306/cas"),
            "{text}"
        );
        assert!(
            text.contains("redis://:<redacted>@127.0.0.1:6379"),
            "{text}"
        );
        assert!(text.contains("listen = \"127.0.0.1:8443\""), "{text}");
    }
}
