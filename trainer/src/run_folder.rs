//! Run folders: where a run lives (`<out>/<name>`) and whether it already finished with the same
//! settings. Below the training loops and the experiments that fill and read them (`train`,
//! `compare`, `probe`): generic over the config and the summary, so it imports none of them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The run folder: `<out>/<name>`.
pub fn run_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

/// The summary (`summary.json`) of the run in `dir` if it finished with exactly `config` (compared
/// as the config reads back, so keys added since with their defaults compare equal); an error if
/// the folder holds a run of another config: a comparison never mixes runs of different settings.
pub fn finished<C: Serialize + DeserializeOwned, S: DeserializeOwned>(dir: &Path, config: &C) -> Result<Option<S>> {
    let (summary, saved) = (dir.join("summary.json"), dir.join("config.json"));
    if !summary.is_file() {
        return Ok(None);
    }
    let read: C = serde_json::from_slice(&std::fs::read(&saved).with_context(|| saved.display().to_string())?)
        .with_context(|| format!("{} is not a config of this trainer", saved.display()))?;
    anyhow::ensure!(
        serde_json::to_string(&read)? == serde_json::to_string(config)?,
        "{} holds a run of other settings than this comparison's: compare into another --out, or delete it",
        dir.display()
    );
    Ok(Some(serde_json::from_slice(&std::fs::read(&summary)?).with_context(|| summary.display().to_string())?))
}
