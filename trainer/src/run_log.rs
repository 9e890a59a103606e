//! A run folder's logs: what one line of `epochs.jsonl` holds for the classifier and for the
//! localizer, JSONL appended line by line, CSV tables derived from them (the folder itself and its
//! `config.json` come from `checkpoint::Checkpoints::open`). Below the loops that fill these logs
//! and the plots that draw them: it imports neither.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    let mut line = serde_json::to_string(value)?;
    line.push('\n');
    Ok(datasets::durable::append_whole(path, line.as_bytes())?)
}

/// Writes a CSV file: the header, then one line per row.
pub fn write_csv(path: &Path, header: &str, rows: impl Iterator<Item = String>) -> Result<()> {
    let mut out = format!("{header}\n");
    for r in rows {
        out += &r;
        out.push('\n');
    }
    Ok(datasets::durable::write_atomic(path, out.as_bytes())?)
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

/// What a step did, as `steps.jsonl` records it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub ratio_a: f64,
    /// The coefficients applied to the gradients: 1 without modulation (`none`, `ge-only`, or
    /// outside the window).
    pub k_a: f64,
    pub k_v: f64,
    /// The rule's coefficients from this step's scores, applied or not.
    pub rule_k_a: f64,
    pub rule_k_v: f64,
    /// Whether the method changed the gradients (an OGM-family method inside the window).
    pub modulated: bool,
    /// The alpha a step chose (`ogm-ge-adaptive`); absent for every other method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
}

/// An epoch's training totals, as the epoch logs report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainStats {
    /// Mean loss per sample (clip).
    pub train_loss: f64,
    /// Mean coefficients applied (1 for a step without modulation).
    pub mean_k_a: f64,
    pub mean_k_v: f64,
    /// Mean of `score_a / score_v`.
    pub mean_ratio_a: f64,
    /// Mean wall-clock seconds of a training step (forward, backward, the method, the update;
    /// not the wait for the loader): what a method costs.
    #[serde(default)]
    pub step_seconds: f64,
    /// Wall-clock seconds of the whole training pass, from asking the loader for the first batch
    /// to the last update: the steps plus every wait for data (evaluation excluded). Samples per
    /// second end to end are the epoch's train samples over this.
    #[serde(default)]
    pub train_seconds: f64,
}

/// Running totals of an epoch's steps.
#[derive(Debug, Default)]
pub struct EpochTally {
    loss_sum: f64,
    samples: usize,
    steps: Vec<StepRecord>,
    seconds: f64,
    pass_seconds: f64,
}

impl EpochTally {
    /// One step: its mean loss over `samples` samples, and what it applied.
    pub fn add(&mut self, samples: usize, step: &StepRecord, seconds: f64) {
        self.seconds += seconds;
        self.loss_sum += step.loss * samples as f64;
        self.samples += samples;
        self.steps.push(*step);
    }

    /// The training pass ended after `seconds` of wall-clock time (loader waits included).
    pub fn pass_took(&mut self, seconds: f64) {
        self.pass_seconds = seconds;
    }

    pub fn stats(&self) -> TrainStats {
        let mean = |f: fn(&StepRecord) -> f64| self.steps.iter().map(f).sum::<f64>() / self.steps.len().max(1) as f64;
        TrainStats {
            train_loss: self.loss_sum / self.samples.max(1) as f64,
            mean_k_a: mean(|c| c.k_a),
            mean_k_v: mean(|c| c.k_v),
            mean_ratio_a: mean(|c| c.ratio_a),
            step_seconds: self.seconds / self.steps.len().max(1) as f64,
            train_seconds: self.pass_seconds,
        }
    }
}
