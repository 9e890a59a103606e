//! Per-epoch checkpoints and `--resume`, for the classifier and the localizer alike.
//!
//! After every epoch: `checkpoint/model-eNNNN.bin`, `checkpoint/optim-eNNNN.bin`, then
//! `checkpoint/progress.json` (written atomically) naming the next epoch: the commit point. A kill
//! at any moment leaves either the previous committed checkpoint or the new one. A resumed run
//! reloads model and optimiser, drops log lines of epochs after the checkpoint, reseeds per epoch
//! as the uninterrupted run does, and so ends with the same metrics and logs.
//!
//! Every file of a run folder is written whole or not at all (`datasets::durable`): a full disk
//! or a read-only folder stops the run with the path and the system's reason, leaves the last
//! committed checkpoint and whole log lines, and `--resume` then ends as an uninterrupted run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::backend::Backend;
use datasets::durable::write_atomic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

type Rec = BinFileRecorder<FullPrecisionSettings>;

/// Where a run stands: the next epoch to train, the step counter, and the best epoch so far
/// (selection score, epoch, its test metrics `M`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress<M> {
    pub next_epoch: usize,
    pub step: usize,
    pub best: Option<(f64, usize, M)>,
    /// The balancing method's state (what it estimated), `null` for a method without one.
    #[serde(default)]
    pub method: serde_json::Value,
}

/// A run folder's checkpoints.
pub struct Checkpoints {
    dir: PathBuf,
    rec: Rec,
    /// Held while the run trains (released when the process ends, however it ends).
    _lock: std::fs::File,
}

impl Checkpoints {
    /// Opens `dir` for a run of `config`: writes `config.json`. A folder that already holds a run
    /// (its `config.json`) is never overwritten: without `resume` that is an error saying what to
    /// do. With `resume`, the saved config must be the same (else an error); a committed
    /// checkpoint's progress is returned, with `epochs.jsonl` and `steps.jsonl` cut back to the
    /// epochs before it; without one (killed before its first epoch ended) the run starts over.
    pub fn open<M: DeserializeOwned, C: Serialize + DeserializeOwned>(dir: &Path, config: &C, resume: bool) -> Result<(Self, Option<Progress<M>>)> {
        let config_json = serde_json::to_string_pretty(config)?;
        std::fs::create_dir_all(dir.join("checkpoint")).with_context(|| dir.display().to_string())?;
        // One process per run folder: a second one (another `compare` on the same folder, a
        // resumed run whose killed predecessor is still exiting) waits for the first.
        let lock = std::fs::File::create(dir.join(".lock")).with_context(|| dir.display().to_string())?;
        if lock.try_lock().is_err() {
            eprintln!("{}: in use by another process, waiting for it to finish", dir.display());
            lock.lock().with_context(|| format!("locking {}", dir.display()))?;
        }
        let config_path = dir.join("config.json");
        let progress_path = dir.join("checkpoint/progress.json");
        if config_path.exists() {
            anyhow::ensure!(
                resume,
                "run folder {} already holds a run; pass --resume to continue it, give another --name (or --out) for a new run, or delete the folder",
                dir.display()
            );
            let saved = std::fs::read_to_string(&config_path).with_context(|| config_path.display().to_string())?;
            // Read as today's config type, so a key added since (with its default) still matches.
            let saved: C = serde_json::from_str(&saved).with_context(|| format!("resume: {} is not a config of this trainer", config_path.display()))?;
            anyhow::ensure!(
                serde_json::to_string_pretty(&saved)? == config_json,
                "resume: {} was made with another config; start a new run (other --name)",
                dir.display()
            );
        }
        let resumed: Option<Progress<M>> = if resume && config_path.exists() && progress_path.exists() {
            Some(serde_json::from_slice(&std::fs::read(&progress_path)?).with_context(|| progress_path.display().to_string())?)
        } else {
            // Nothing committed to continue: no stale progress file may survive the fresh start.
            let _ = std::fs::remove_file(&progress_path);
            None
        };
        write_atomic(&config_path, config_json.as_bytes())?;
        let next_epoch = resumed.as_ref().map_or(0, |p| p.next_epoch);
        for f in ["epochs.jsonl", "steps.jsonl", "method.jsonl"] {
            truncate_log(&dir.join(f), next_epoch)?;
        }
        let _ = std::fs::remove_file(dir.join("summary.json"));
        Ok((Self { dir: dir.to_path_buf(), rec: Rec::new(), _lock: lock }, resumed))
    }

    fn stem(&self, what: &str, epoch: usize) -> PathBuf {
        self.dir.join("checkpoint").join(format!("{what}-e{epoch:04}"))
    }

    /// Model and optimiser as the checkpoint before `progress.next_epoch` left them.
    pub fn restore<B, Mo, O, M>(&self, progress: &Progress<M>, model: Mo, optim: O, device: &B::Device) -> Result<(Mo, O)>
    where
        B: AutodiffBackend,
        Mo: AutodiffModule<B>,
        O: Optimizer<Mo, B>,
    {
        let last = progress.next_epoch.checked_sub(1).context("resume: a checkpoint before the first epoch")?;
        let model = model.load_file(self.stem("model", last), &self.rec, device).context("resume: loading the model")?;
        let record = self.rec.load(self.stem("optim", last), device).context("resume: loading the optimiser")?;
        Ok((model, optim.load_record(record)))
    }

    /// Saves the checkpoint after `epoch` (model and optimiser files first, then the progress
    /// file that commits them) and removes the previous epoch's files. When any of it fails, this
    /// epoch's files are removed again and the previous checkpoint stays the committed one.
    pub fn save<B, Mo, O, M>(&self, epoch: usize, model: &Mo, optim: &O, progress: &Progress<M>) -> Result<()>
    where
        B: AutodiffBackend,
        Mo: AutodiffModule<B>,
        O: Optimizer<Mo, B>,
        M: Serialize,
    {
        let files = ["model", "optim"].map(|what| self.stem(what, epoch).with_extension("bin"));
        let committed = (|| -> Result<()> {
            save_model(model, &self.stem("model", epoch))?;
            let optim_bytes = BinBytesRecorder::<FullPrecisionSettings>::default().record(optim.to_record(), ()).context("recording the optimiser")?;
            write_atomic(&files[1], &optim_bytes)?;
            let json = serde_json::to_string_pretty(progress)?;
            Ok(write_atomic(&self.dir.join("checkpoint/progress.json"), json.as_bytes())?)
        })();
        if committed.is_err() {
            // Not committed (a full disk, say): only the previous checkpoint stays in view.
            for f in &files {
                let _ = std::fs::remove_file(f);
            }
        }
        committed?;
        if epoch > 0 {
            for what in ["model", "optim"] {
                let _ = std::fs::remove_file(self.stem(what, epoch - 1).with_extension("bin"));
            }
        }
        Ok(())
    }
}

/// Saves `model` as `<stem>.bin` (Burn's full-precision binary record, what `load_file` reads),
/// written whole or not at all.
pub fn save_model<B: Backend, M: Module<B>>(model: &M, stem: &Path) -> Result<()> {
    let bytes = BinBytesRecorder::<FullPrecisionSettings>::default().record(model.clone().into_record(), ()).context("recording the model")?;
    Ok(write_atomic(&stem.with_extension("bin"), &bytes)?)
}

/// Keeps only log lines of epochs before `next_epoch` (a resumed run rewrites the rest).
fn truncate_log(path: &Path, next_epoch: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["epoch"].as_u64()).is_some_and(|e| (e as usize) < next_epoch))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(write_atomic(path, kept.as_bytes())?)
}
