//! A run folder's logs: what one line of `epochs.jsonl` holds for the classifier and for the
//! localizer, JSONL appended line by line, CSV tables derived from them (the folder itself and its
//! `config.json` come from `checkpoint::Checkpoints::open`). Below the loops that fill these logs
//! and the plots that draw them: it imports neither.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::balance::{StepRecord, TrainStats};
use crate::metrics::{Contribution, HeadMetrics, SegmentAccuracy};
use crate::progress::EpochBar;

/// Evaluation of one split.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub loss: f64,
    pub fused: HeadMetrics,
    pub audio: HeadMetrics,
    pub visual: HeadMetrics,
    /// Each modality's Shapley contribution to the fused accuracy (absent in runs before it).
    #[serde(default)]
    pub contribution: Contribution,
}

/// One line of `epochs.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f64,
    #[serde(flatten)]
    pub train: TrainStats,
    pub val: Option<EvalMetrics>,
    pub test: EvalMetrics,
    pub seconds: f64,
}

/// Evaluation of one split.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LocalizeMetrics {
    pub loss: f64,
    pub segments: usize,
    pub fused: SegmentAccuracy,
    pub audio: SegmentAccuracy,
    pub visual: SegmentAccuracy,
}

/// One line of `epochs.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalizeEpoch {
    pub epoch: usize,
    pub lr: f64,
    #[serde(flatten)]
    pub train: TrainStats,
    pub val: LocalizeMetrics,
    pub test: LocalizeMetrics,
    pub seconds: f64,
}

/// Appends one JSON line.
pub fn append_line(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| path.display().to_string())?;
    writeln!(f, "{}", serde_json::to_string(value)?)?;
    Ok(())
}

/// Writes a CSV file: the header, then one line per row.
pub fn write_csv(path: &Path, header: &str, rows: impl Iterator<Item = String>) -> Result<()> {
    let mut out = format!("{header}\n");
    for r in rows {
        out += &r;
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| path.display().to_string())
}

/// The lines of a JSONL log (none when the file does not exist).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    text.lines().map(|l| serde_json::from_str(l).with_context(|| path.display().to_string())).collect()
}

/// `steps.jsonl`: appended step by step, and kept in memory for the plots (read once when a
/// resumed run starts, never re-read).
#[derive(Debug)]
pub struct StepLog {
    path: PathBuf,
    pub records: Vec<StepRecord>,
}

impl StepLog {
    /// The log at `path` with the lines already there.
    pub fn open(path: PathBuf) -> Result<Self> {
        Ok(Self { records: read_jsonl(&path)?, path })
    }

    /// Appends a step's line, keeps it and shows the step on the bar.
    pub fn record(&mut self, bar: &EpochBar, r: StepRecord) -> Result<()> {
        append_line(&self.path, &r)?;
        bar.step(format!("step {}: loss {:.3}, k_a {:.2}, k_v {:.2}", r.step, r.loss, r.k_a, r.k_v));
        self.records.push(r);
        Ok(())
    }
}
