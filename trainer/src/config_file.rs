//! Config files: a JSON object of config keys (any subset; a run's own `config.json` works, so
//! `--config runs/<name>/config.json` repeats a run). Precedence: a flag given on the command
//! line, then the file, then the flag's default.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `from_cli` (the config the command line resolved, defaults included) with the file's keys
/// laid over every key whose flag was not given explicitly (`explicit(key)`).
pub fn merge<T: Serialize + DeserializeOwned>(from_cli: &T, file: &Path, explicit: impl Fn(&str) -> bool) -> Result<T> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading config file {}", file.display()))?;
    let given: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let serde_json::Value::Object(given) = given else { bail!("{}: expected a JSON object of config keys", file.display()) };
    let mut merged = serde_json::to_value(from_cli)?;
    let obj = merged.as_object_mut().context("configs serialise to objects")?;
    for (key, value) in given {
        if !obj.contains_key(&key) {
            let known: Vec<&str> = obj.keys().map(String::as_str).collect();
            bail!("{}: unknown key {key:?} (known: {})", file.display(), known.join(", "));
        }
        if !explicit(&key) {
            obj.insert(key, value);
        }
    }
    serde_json::from_value(merged).with_context(|| format!("{}: a value has the wrong type", file.display()))
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
