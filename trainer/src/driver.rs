//! The one epoch driver of every training loop (the classifier, the AVE localizer): the run
//! folder and its checkpoints, resuming, per-epoch seeding, the step learning-rate schedule, the
//! modulation window, the balancing rule on each step, the step log and the epoch's tallies,
//! evaluation and model selection, the epoch log, the CSV view and the plots. A task supplies
//! what differs: its batches, its forward pass, its evaluation and how its logs read.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::balance::{balanced_step, Balance, EpochTally, StepRecord, StepRule, TrainStats};
use crate::checkpoint::{Checkpoints, Progress};
use crate::optim::{self, OptimizerKind};
use crate::run_log::{append_line, read_jsonl, write_csv, StepLog};

/// The settings every loop shares.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub epochs: usize,
    pub lr: f64,
    /// Multiply the learning rate by `lr_gamma` every `lr_step` epochs (StepLR stepped per epoch).
    pub lr_step: usize,
    pub lr_gamma: f64,
    pub seed: u64,
    pub balance: Balance,
    pub alpha: f64,
    /// The modulation window, 0-based epochs, both ends included.
    pub modulation_start: usize,
    pub modulation_end: usize,
    pub optimizer: OptimizerKind,
    /// SGD's momentum (unused by Adam and AdamW).
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Schedule {
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.lr * self.lr_gamma.powi((epoch / self.lr_step.max(1)) as i32)
    }

    pub fn modulates(&self, epoch: usize) -> bool {
        self.modulation_start <= epoch && epoch <= self.modulation_end
    }
}

/// One training batch through the model: the loss to minimise and the uni-modal logits the rule
/// scores (rows matching `labels`), and how many samples (clips) it holds.
pub struct Forward<B: Backend> {
    pub loss: Tensor<B, 1>,
    pub audio: Tensor<B, 2>,
    pub visual: Tensor<B, 2>,
    pub labels: Vec<i64>,
    pub samples: usize,
}

/// What one epoch's evaluation gives the driver.
pub struct Evaluated<E, L> {
    /// Model selection maximises it (strictly: the first of equal epochs is kept).
    pub score: f64,
    /// The metrics a selected epoch is remembered by (its test metrics).
    pub selected: E,
    /// The epoch's line of `epochs.jsonl`.
    pub log: L,
}

/// A training task on backend `B`.
pub trait Task<B: AutodiffBackend> {
    type Model: AutodiffModule<B>;
    type Batch;
    type Selected: Copy + Serialize + DeserializeOwned;
    type Log: Clone + Serialize + DeserializeOwned;

    /// Conv-weight parameter ids of the audio and the visual encoder (what the rule modulates).
    fn encoders(model: &Self::Model) -> (Vec<burn::module::ParamId>, Vec<burn::module::ParamId>);
    /// The training batches of `epoch`, in the loader's order.
    fn batches(&self, epoch: usize) -> Receiver<Result<Self::Batch>>;
    fn forward(&self, model: &Self::Model, batch: Self::Batch) -> Forward<B>;
    /// Evaluation after an epoch, with the epoch's training totals for its log line.
    fn evaluate(
        &self,
        model: &<Self::Model as AutodiffModule<B>>::InnerModule,
        epoch: usize,
        lr: f64,
        train: TrainStats,
        started: Instant,
    ) -> Result<Evaluated<Self::Selected, Self::Log>>;
    /// The progress line of an epoch.
    fn summary_line(&self, log: &Self::Log) -> String;
    /// `epochs.csv`: its header and one row per epoch.
    fn csv_header(&self) -> String;
    fn csv_row(&self, log: &Self::Log) -> String;
    /// The PNG plots of the run so far.
    fn plots(&self, dir: &Path, history: &[Self::Log], steps: &[StepRecord]) -> Result<()>;
    /// Called when an epoch becomes the selected one (e.g. to keep that model).
    fn on_selected(&self, _model: &<Self::Model as AutodiffModule<B>>::InnerModule, _dir: &Path) -> Result<()> {
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished<S, L> {
    pub best_epoch: usize,
    pub selected: S,
    pub history: Vec<L>,
}

/// Trains `model` with the schedule's optimiser under `schedule` in the run folder `dir` (which
/// gets `config`): fresh, or with `resume` from its last checkpoint, ending exactly as an
/// uninterrupted run.
#[allow(clippy::too_many_arguments)]
pub fn drive<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    schedule: &Schedule,
    name: &str,
    dir: &Path,
    config: &(impl Serialize + DeserializeOwned),
    model: T::Model,
    device: &B::Device,
    progress: bool,
    resume: bool,
) -> Result<Finished<T::Selected, T::Log>> {
    let (m, wd) = (schedule.momentum, schedule.weight_decay);
    match schedule.optimizer {
        OptimizerKind::Sgd => drive_with(task, schedule, name, dir, config, model, optim::sgd(m, wd).init(), device, progress, resume),
        OptimizerKind::Adam => drive_with(task, schedule, name, dir, config, model, optim::adam(wd).init(), device, progress, resume),
        OptimizerKind::Adamw => drive_with(task, schedule, name, dir, config, model, optim::adamw(wd).init(), device, progress, resume),
    }
}

#[allow(clippy::too_many_arguments)]
fn drive_with<B, T, O>(
    task: &T,
    schedule: &Schedule,
    name: &str,
    dir: &Path,
    config: &(impl Serialize + DeserializeOwned),
    mut model: T::Model,
    mut optim: O,
    device: &B::Device,
    progress: bool,
    resume: bool,
) -> Result<Finished<T::Selected, T::Log>>
where
    B: AutodiffBackend,
    T: Task<B>,
    O: Optimizer<T::Model, B>,
{
    let (checkpoints, resumed) = Checkpoints::open::<T::Selected, _>(dir, config, resume)?;
    let next_epoch = resumed.as_ref().map_or(0, |p| p.next_epoch);
    // Logs kept in memory for the CSV and the plots, read once here (a resumed run's earlier epochs).
    let mut history: Vec<T::Log> = read_jsonl(&dir.join("epochs.jsonl"))?;
    let mut steps = StepLog::open(dir.join("steps.jsonl"))?;
    write_csv(&dir.join("epochs.csv"), &task.csv_header(), history.iter().map(|l| task.csv_row(l)))?;
    let (mut best, mut step) = (None, 0usize);
    if let Some(p) = &resumed {
        (model, optim) = checkpoints.restore(p, model, optim, device)?;
        (best, step) = (p.best, p.step);
        if progress {
            eprintln!("{name}: resuming at epoch {}", p.next_epoch);
        }
    }
    // After a restore: the parameters (and their ids) are the checkpoint's.
    let (audio_ids, visual_ids) = T::encoders(&model);
    let rule = StepRule { method: schedule.balance, alpha: schedule.alpha, audio_ids, visual_ids };
    let bar = crate::progress::epoch_bar(progress, schedule.epochs, name);
    bar.skip(next_epoch);
    for epoch in next_epoch..schedule.epochs {
        let started = Instant::now();
        // Reseeded per epoch, so the GE noise of a resumed run is the uninterrupted run's.
        B::seed(device, schedule.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let lr = schedule.lr_at(epoch);
        let active = schedule.modulates(epoch);
        let mut tally = EpochTally::default();
        for batch in task.batches(epoch) {
            let out = task.forward(&model, batch?);
            let (next, loss, c) = balanced_step(model, &mut optim, lr, out.loss, out.audio, out.visual, &out.labels, &rule, active);
            model = next;
            let record = rule.record(step, epoch, loss, &c, active);
            steps.record(&bar, record)?;
            step += 1;
            tally.add(out.samples, &record);
        }
        let valid = model.valid();
        let e = task.evaluate(&valid, epoch, lr, tally.stats(), started)?;
        append_line(&dir.join("epochs.jsonl"), &e.log)?;
        bar.epoch_done(task.summary_line(&e.log));
        if best.as_ref().is_none_or(|(s, _, _): &(f64, usize, T::Selected)| e.score > *s) {
            best = Some((e.score, epoch, e.selected));
            task.on_selected(&valid, dir)?;
        }
        checkpoints.save(epoch, &model, &optim, &Progress { next_epoch: epoch + 1, step, best })?;
        history.push(e.log);
        write_csv(&dir.join("epochs.csv"), &task.csv_header(), history.iter().map(|l| task.csv_row(l)))?;
        task.plots(dir, &history, &steps.records)?;
    }
    bar.finish();
    let (_, best_epoch, selected) = best.context("no epoch ran")?;
    Ok(Finished { best_epoch, selected, history })
}
