//! The one epoch driver of every training loop (the classifier, the AVE localizer): the run
//! folder and its checkpoints, resuming, per-epoch seeding, the step learning-rate schedule, the
//! modulation window, the balancing method's hooks on each step and between epochs (its estimate
//! runs included), the step log and the epoch's tallies, evaluation and model selection, the epoch
//! log, the CSV view and the plots. A task (`task.rs`) supplies what differs: its batches, its
//! forward pass, its evaluation and how its logs read; a method (`methods/`) what it does to a
//! step; a between-epoch estimate a method asks for runs in `estimate.rs`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::balance::{coefficients, logits_vec, Coefficients};
use crate::checkpoint::{Checkpoints, Progress};
use crate::estimate::estimate_heads;
use crate::methods::Balance;
use crate::methods::{self, Applied, EstimateRule, Head, LossInput, Method, MethodParams, StepContext, StepKind};
use crate::model::Logits;
use crate::optim::{self, OptimizerKind};
use crate::run_log::{append_line, read_jsonl, write_csv, EpochTally, StepLog, StepRecord};
use crate::task::{Forward, Task};
use crate::tensorboard::EventWriter;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::GradientsParams;

/// The settings every loop shares.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub epochs: usize,
    pub lr: f64,
    /// Multiply the learning rate by `lr_gamma` every `lr_step` epochs (StepLR stepped per epoch).
    pub lr_step: usize,
    pub lr_gamma: f64,
    /// At most this many decays (PSP: 2, its `epoch < 170`), or no limit.
    pub lr_decays: Option<usize>,
    pub seed: u64,
    pub balance: Balance,
    /// The method's parameters (alpha, Modality-Drop's p, Gradient-Blending's super-epoch).
    pub method: MethodParams,
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
        let decays = (epoch / self.lr_step.max(1)).min(self.lr_decays.unwrap_or(usize::MAX));
        self.lr * self.lr_gamma.powi(decays as i32)
    }

    pub fn modulates(&self, epoch: usize) -> bool {
        self.modulation_start <= epoch && epoch <= self.modulation_end
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished<S, L> {
    pub best_epoch: usize,
    pub selected: S,
    pub history: Vec<L>,
}

/// One run as the driver sees it: its schedule, its name, its folder and the config written
/// there, whether it resumes, whether it shows progress.
pub struct Run<'a, C> {
    pub schedule: &'a Schedule,
    pub name: &'a str,
    pub dir: &'a Path,
    pub config: &'a C,
    pub progress: bool,
    pub resume: bool,
}

/// Trains `model` with the schedule's optimiser under `run.schedule` in the run folder `run.dir`
/// (which gets `run.config`): fresh, or with `run.resume` from its last checkpoint, ending exactly
/// as an uninterrupted run.
pub fn drive<B: AutodiffBackend, T: Task<B>, C: Serialize + DeserializeOwned>(
    task: &T,
    run: &Run<C>,
    model: T::Model,
    device: &B::Device,
) -> Result<Finished<T::Selected, T::Log>> {
    let (m, wd) = (run.schedule.momentum, run.schedule.weight_decay);
    match run.schedule.optimizer {
        OptimizerKind::Sgd => drive_with(task, run, model, &|| optim::sgd(m, wd).init(), device),
        OptimizerKind::Adam => drive_with(task, run, model, &|| optim::adam(wd).init(), device),
        OptimizerKind::Adamw => drive_with(task, run, model, &|| optim::adamw(wd).init(), device),
    }
}

fn drive_with<B, T, O, C>(task: &T, run: &Run<C>, mut model: T::Model, new_optim: &dyn Fn() -> O, device: &B::Device) -> Result<Finished<T::Selected, T::Log>>
where
    B: AutodiffBackend,
    T: Task<B>,
    O: Optimizer<T::Model, B>,
    C: Serialize + DeserializeOwned,
{
    let Run { schedule, name, dir, config, progress, resume } = *run;
    let (checkpoints, resumed) = Checkpoints::open::<T::Selected, _>(dir, config, resume)?;
    let mut optim = new_optim();
    let mut method = methods::build::<B>(schedule.balance, &schedule.method);
    let ce = CrossEntropyLossConfig::new().init(device);
    let next_epoch = resumed.as_ref().map_or(0, |p| p.next_epoch);
    // Logs kept in memory for the CSV and the plots, read once here (a resumed run's earlier epochs).
    let mut history: Vec<T::Log> = read_jsonl(&dir.join("epochs.jsonl"))?;
    let mut steps = StepLog::open(dir.join("steps.jsonl"))?;
    let events = EventWriter::rewrite(dir, &history)?;
    write_csv(&dir.join("epochs.csv"), &task.csv_header(), history.iter().map(|l| task.csv_row(l)))?;
    let (mut best, mut step) = (None, 0usize);
    if let Some(p) = &resumed {
        (model, optim) = checkpoints.restore(p, model, optim, device)?;
        (best, step) = (p.best, p.step);
        method.restore(&p.method)?;
        if progress {
            eprintln!("{name}: resuming at epoch {}", p.next_epoch);
        }
    }
    // After a restore: the parameters (and their ids) are the checkpoint's.
    let (audio_ids, visual_ids) = T::encoders(&model);
    let parts = T::parts(&model);
    let batches = task.steps_per_epoch();
    let bar = crate::progress::epoch_bar(progress, schedule.epochs, name);
    bar.skip(next_epoch);
    for epoch in next_epoch..schedule.epochs {
        let started = Instant::now();
        let lr = schedule.lr_at(epoch);
        if let Some(request) = method.estimate_before(epoch) {
            // BB's copies start from the optimiser's initial state at the base rate.
            let copy_lr = if request.rule == EstimateRule::Bb { schedule.lr } else { lr };
            let estimates = estimate_heads(task, &model, new_optim, &ce, copy_lr, epoch, request)?;
            method.estimated(epoch, &estimates);
        }
        if method.sample_before(epoch) {
            let sample = task.sample_features(&model.valid(), epoch)?.context("this method needs the task's training features (the classifier's)")?;
            method.sampled(epoch, &sample);
        }
        // Reseeded per epoch, so the GE noise of a resumed run is the uninterrupted run's.
        B::seed(device, schedule.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let active = schedule.modulates(epoch);
        method.begin_epoch(epoch, active);
        let mut tally = EpochTally::default();
        let pass_started = Instant::now();
        for (j, batch) in task.batches(epoch).into_iter().enumerate() {
            let batch = batch?;
            let step_started = Instant::now();
            let default = Coefficients::default();
            let ctx = StepContext {
                epoch,
                batch: j,
                batches,
                active,
                coeffs: &default,
                audio_ids: &audio_ids,
                visual_ids: &visual_ids,
                parts: &parts,
                mean_feature: None,
            };
            let alpha = schedule.method.alpha;
            let (next, loss_value, c, applied, samples) = match method.step_kind() {
                StepKind::Joint => {
                    let out = task.forward(&model, batch, &mut |s| method.features(s));
                    let samples = out.samples;
                    let tools = StepTools { optim: &mut optim, lr, method: method.as_mut(), ce: &ce, alpha, ctx };
                    let (next, loss, c, applied) = train_step(model, out, tools);
                    (next, loss, c, applied, samples)
                }
                StepKind::Pareto => pareto_step(task, model, batch, StepTools { optim: &mut optim, lr, method: method.as_mut(), ce: &ce, alpha, ctx }),
                StepKind::Alternating => {
                    alternating_step(task, model, batch, StepTools { optim: &mut optim, lr, method: method.as_mut(), ce: &ce, alpha, ctx })?
                }
            };
            model = next;
            let record = step_record(step, epoch, loss_value, &c, &applied);
            steps.record(&bar, record)?;
            step += 1;
            tally.add(samples, &record, step_started.elapsed().as_secs_f64());
        }
        tally.pass_took(pass_started.elapsed().as_secs_f64());
        let valid = model.valid();
        let e = task.evaluate(&valid, epoch, lr, tally.stats(), started)?;
        append_line(&dir.join("epochs.jsonl"), &e.log)?;
        events.append(&e.log)?;
        if let Some(line) = method.epoch_log(epoch) {
            append_line(&dir.join("method.jsonl"), &line)?;
        }
        bar.epoch_done(task.summary_line(&e.log));
        if best.as_ref().is_none_or(|(s, _, _): &(f64, usize, T::Selected)| e.score > *s) {
            best = Some((e.score, epoch, e.selected));
            task.on_selected(&valid, dir)?;
        }
        checkpoints.save(epoch, &model, &optim, &Progress { next_epoch: epoch + 1, step, best, method: method.state() })?;
        history.push(e.log);
        write_csv(&dir.join("epochs.csv"), &task.csv_header(), history.iter().map(|l| task.csv_row(l)))?;
        task.plots(dir, &history, &steps.records)?;
    }
    bar.finish();
    let (_, best_epoch, selected) = best.context("no epoch ran")?;
    Ok(Finished { best_epoch, selected, history })
}

/// What a training step is given besides its model and its batch: the optimiser and this
/// epoch's learning rate, the method, the loss, the OGM rule's alpha and where the step stands.
pub struct StepTools<'a, 'c, B: AutodiffBackend, O> {
    pub optim: &'a mut O,
    pub lr: f64,
    pub method: &'a mut dyn Method<B>,
    pub ce: &'a CrossEntropyLoss<B>,
    pub alpha: f64,
    pub ctx: StepContext<'c>,
}

/// One optimiser step of the method on a forward pass `out`: the method's loss, the step's scores
/// and the OGM rule's coefficients at `alpha` from the uni-modal logits, backward, the method's
/// gradient edit (`ctx` says where: its `coeffs` are replaced by this step's), the update. Returns
/// the updated model, the loss value, the coefficients and what the method applied.
pub fn train_step<B, M, O>(model: M, out: Forward<B>, tools: StepTools<B, O>) -> (M, f64, Coefficients, Applied)
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let StepTools { optim, lr, method, ce, alpha, ctx } = tools;
    let targets = out.targets.clone();
    let input = LossInput { logits: &out.logits, trained: out.trained, features: out.features, labels: &out.labels, targets: targets.clone() };
    let loss = method.loss(&input, &|z| ce.forward(z, targets.clone()));
    let loss = match out.aux_loss {
        Some(aux) => loss + aux,
        None => loss,
    };
    let c = step_coefficients(&out.logits, &out.labels, alpha);
    let loss_value: f64 = loss.clone().into_scalar().elem();
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    let applied = method.gradients(&mut grads, &StepContext { coeffs: &c, ..ctx });
    (optim.step(lr, model, grads), loss_value, c, applied)
}

/// The step's scores and the OGM rule's coefficients at `alpha`, from its uni-modal logits.
fn step_coefficients<B: Backend>(logits: &Logits<B>, labels: &[i64], alpha: f64) -> Coefficients {
    let classes = logits.audio.dims()[1];
    coefficients(&logits_vec(logits.audio.clone().detach()), &logits_vec(logits.visual.clone().detach()), labels, classes, alpha)
}

/// A [`StepKind::Pareto`] step: the batch forward twice (the second leaving batch-norm running
/// statistics alone: the same outputs, the batch counted once), the multimodal loss backward
/// from the first, the uni-modal losses from the second, the method's combination, the update.
/// The loss reported is `L_mm + L_a + L_v`.
fn pareto_step<B, T, O>(task: &T, model: T::Model, batch: T::Batch, tools: StepTools<B, O>) -> (T::Model, f64, Coefficients, Applied, usize)
where
    B: AutodiffBackend,
    T: Task<B>,
    O: Optimizer<T::Model, B>,
{
    let StepTools { optim, lr, method, ce, alpha, ctx } = tools;
    let out = task.forward(&model, batch.clone(), &mut |s| (s.audio, s.visual));
    let targets = out.targets.clone();
    let c = step_coefficients(&out.logits, &out.labels, alpha);
    let l_mm = ce.forward(out.logits.fused, targets.clone());
    let mm: f64 = l_mm.clone().into_scalar().elem();
    let g_mm = GradientsParams::from_grads(l_mm.backward(), &model);
    let again = crate::batch_norm::with_frozen_statistics(|| task.forward(&model, batch, &mut |s| (s.audio, s.visual)));
    let l_uni = ce.forward(again.logits.audio, targets.clone()) + ce.forward(again.logits.visual, targets);
    let uni: f64 = l_uni.clone().into_scalar().elem();
    let g_uni = GradientsParams::from_grads(l_uni.backward(), &model);
    let (grads, applied) = method.combine(g_mm, g_uni, &StepContext { coeffs: &c, ..ctx });
    (optim.step(lr, model, grads), mm + uni, c, applied, out.samples)
}

/// A [`StepKind::Alternating`] step: per modality, audio then visual, its forward alone through
/// the shared head, its cross-entropy, backward, the method's gradient edit (given the batch mean
/// of the modality's features), an update. The loss reported is the two losses' mean (MLA's
/// `av_alpha` 0.5); the coefficients are the rule's on the two steps' logits.
fn alternating_step<B, T, O>(task: &T, mut model: T::Model, batch: T::Batch, tools: StepTools<B, O>) -> Result<(T::Model, f64, Coefficients, Applied, usize)>
where
    B: AutodiffBackend,
    T: Task<B>,
    O: Optimizer<T::Model, B>,
{
    let StepTools { optim, lr, method, ce, alpha, ctx } = tools;
    let (mut logits, mut loss_sum, mut applied, mut samples, mut labels) = (Vec::new(), 0.0, Applied::NOTHING, 0, Vec::new());
    for head in [Head::Audio, Head::Visual] {
        let out = task.forward_one(&model, batch.clone(), head)?;
        let loss = ce.forward(out.trained.clone(), out.targets.clone());
        loss_sum += loss.clone().into_scalar().elem::<f64>();
        let (h, _) = out.features.context("a one-modality forward gives its features")?;
        let mean = logits_vec(h.detach().mean_dim(0));
        logits.push(logits_vec(out.trained.detach()));
        (samples, labels) = (out.samples, out.labels);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        applied = method.gradients(&mut grads, &StepContext { mean_feature: Some(&mean), ..ctx });
        model = optim.step(lr, model, grads);
    }
    let classes = logits[0].len() / labels.len().max(1);
    let c = coefficients(&logits[0], &logits[1], &labels, classes, alpha);
    Ok((model, loss_sum / 2.0, c, applied, samples))
}

/// What `steps.jsonl` records of a step: the step's scores, the rule's coefficients at the
/// run's alpha, and what the method applied.
fn step_record(step: usize, epoch: usize, loss: f64, c: &Coefficients, applied: &Applied) -> StepRecord {
    StepRecord {
        step,
        epoch,
        loss,
        ratio_a: c.ratio_a,
        k_a: applied.k_a,
        k_v: applied.k_v,
        rule_k_a: c.k_a,
        rule_k_v: c.k_v,
        modulated: applied.modulated,
        alpha: applied.alpha,
    }
}
