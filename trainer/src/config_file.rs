//! Config files: a JSON object of config keys (any subset; a run's own `config.json` works, so
//! `--config runs/<name>/config.json` repeats a run). Precedence: a flag given on the command
//! line, then the file, then a recipe (`recipe.rs`), then the flag's default. [`overlay`] is the
//! one way keys are laid over a config, for both.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::methods::RENAMED_KEYS;

/// `from_cli` (the config the command line resolved, defaults included) with the file's keys
/// laid over every key whose flag was not given explicitly (`explicit(key)`).
pub fn merge<T: Serialize + DeserializeOwned>(from_cli: &T, file: &Path, explicit: impl Fn(&str) -> bool) -> Result<T> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading config file {}", file.display()))?;
    let given: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let Value::Object(given) = given else { bail!("{}: expected a JSON object of config keys", file.display()) };
    overlay(from_cli, &given, &file.display().to_string(), &explicit)
}

/// A config key under its current name (a method's setting renamed after its method).
pub fn canonical(key: &str) -> String {
    RENAMED_KEYS.iter().find(|(old, _)| *old == key).map_or(key, |(_, new)| *new).to_owned()
}

/// `base` with `layer`'s keys laid over every key not `explicit`; an unknown key or a value of the
/// wrong type is an error naming `source` and the key.
pub fn overlay<T: Serialize + DeserializeOwned>(base: &T, layer: &Map<String, Value>, source: &str, explicit: &dyn Fn(&str) -> bool) -> Result<T> {
    let Value::Object(base) = serde_json::to_value(base)? else { bail!("configs serialise to objects") };
    let mut merged = base.clone();
    for (key, value) in layer {
        let key = canonical(key);
        if !base.contains_key(&key) {
            let known: Vec<&str> = base.keys().map(String::as_str).collect();
            bail!("{source}: unknown key {key:?} (known: {})", known.join(", "));
        }
        if explicit(&key) {
            continue;
        }
        // Each value alone first, so that an error names its key.
        let mut one = base.clone();
        one.insert(key.clone(), value.clone());
        if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
            bail!("{source}: key {key:?} has the wrong type ({e})");
        }
        merged.insert(key, value.clone());
    }
    serde_json::from_value(Value::Object(merged)).with_context(|| format!("{source}: the values do not make a config"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Cfg {
        lr: f64,
        epochs: usize,
        name: String,
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn explicit_flags_beat_the_file_which_beats_defaults() {
        let cli = Cfg { lr: 0.5, epochs: 100, name: "cli".into() };
        let f = file(r#"{"lr": 0.01, "epochs": 7}"#);
        let merged = merge(&cli, f.path(), |k| k == "lr").unwrap();
        assert_eq!(merged, Cfg { lr: 0.5, epochs: 7, name: "cli".into() });
        let merged = merge(&cli, f.path(), |_| false).unwrap();
        assert_eq!(merged, Cfg { lr: 0.01, epochs: 7, name: "cli".into() });
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let cli = Cfg { lr: 0.5, epochs: 100, name: "cli".into() };
        let cases = [
            (r#"{"lr": 0.01, "epohcs": 7}"#, "unknown key \"epohcs\""),
            (r#"{"epochs": "many"}"#, "wrong type"),
            ("[1]", "JSON object"),
            ("lr = 1", "not JSON"),
        ];
        for (text, want) in cases {
            let f = file(text);
            let e = format!("{:#}", merge(&cli, f.path(), |_| false).unwrap_err());
            assert!(e.contains(want) && e.contains(&f.path().display().to_string()), "{text}: {e}");
        }
    }
}
