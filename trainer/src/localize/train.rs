//! Training and evaluation of the localizer: per-segment cross-entropy, Adam (AVGA's optimiser)
//! with a step schedule, the OGM / OGM-GE rule on the encoders' conv weights with uni-modal
//! scores summed over the batch's segments, segment-level accuracy (all, event and background
//! segments) of the fused, audio and visual heads every epoch, model selection on the val split.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::catalog::{AVE_BACKGROUND, AVE_SEGMENTS};
use datasets::Split;
use serde::{Deserialize, Serialize};

use super::data::{assemble_segments, SegmentBatch};
use super::model::{AvLocalizer, LocalizerSize};
use crate::balance::{balanced_step, encoder_conv_ids, logits_vec, Balance, EpochTally, StepRecord, StepRule, TrainStats};
use crate::checkpoint::{Checkpoints, Progress};
use crate::data::{LoaderConfig, ShardSet, Subset};
use crate::model::ModelPreset;
use crate::run_log::{append_line, read_jsonl, write_csv, StepLog};

/// Everything that decides a localization run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalizeConfig {
    /// An AVE shard folder, e.g. `out/ave`.
    pub data: PathBuf,
    pub out: PathBuf,
    pub name: String,
    pub model: ModelPreset,
    pub balance: Balance,
    pub alpha: f64,
    pub modulation_start: usize,
    pub modulation_end: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's learning rate (AVGA: 1e-3).
    pub lr: f64,
    /// Multiply the learning rate by `lr_gamma` every `lr_step` epochs.
    pub lr_step: usize,
    pub lr_gamma: f64,
    pub seed: u64,
    pub shuffle_buffer: usize,
}

/// Segment-level accuracy of one head: over all segments, event segments, background segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentAccuracy {
    pub all: f64,
    pub event: f64,
    pub background: f64,
}

/// Segment accuracy of `[n, classes]` logits against `labels` (argmax per segment, as AVGA's and
/// PSP's `compute_acc`), also split by whether the truth is an event or `background`.
pub fn segment_accuracy(logits: &[f32], labels: &[i64], classes: usize, background: i64) -> SegmentAccuracy {
    let (mut hit, mut ev, mut ev_hit, mut bg, mut bg_hit) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for (i, &y) in labels.iter().enumerate() {
        let row = &logits[i * classes..(i + 1) * classes];
        let pred = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (k, &v)| if v > bv { (k, v) } else { (bi, bv) }).0 as i64;
        let ok = usize::from(pred == y);
        hit += ok;
        if y == background {
            bg += 1;
            bg_hit += ok;
        } else {
            ev += 1;
            ev_hit += ok;
        }
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    SegmentAccuracy { all: frac(hit, labels.len()), event: frac(ev_hit, ev), background: frac(bg_hit, bg) }
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

/// What a run ends with: test metrics at the epoch with the best val fused accuracy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalizeSummary {
    pub best_epoch: usize,
    pub test: LocalizeMetrics,
    pub run_dir: PathBuf,
}

fn tensors<B: Backend>(b: &SegmentBatch, image: usize, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 1, Int>) {
    let n = b.labels.len();
    let [f, w] = b.audio_shape;
    let audio = Tensor::from_data(TensorData::new(b.audio.clone(), [n, 1, f, w]), device);
    let frames = Tensor::from_data(TensorData::new(b.frames.clone(), [n, 3, image, image]), device);
    let labels = Tensor::from_data(TensorData::new(b.labels.clone(), [n]), device);
    (audio, frames, labels)
}

/// Evaluates a localizer (no autodiff) on one split.
pub fn eval_localizer<B: Backend>(model: &AvLocalizer<B>, set: &ShardSet, cfg: &LoaderConfig, device: &B::Device) -> Result<LocalizeMetrics> {
    let classes = set.meta.classes.len() + 1;
    let ce = CrossEntropyLossConfig::new().init(device);
    let (mut fused, mut audio, mut visual, mut labels, mut loss_sum) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0.0);
    for batch in set.epoch_with(cfg, 0, assemble_segments(AVE_SEGMENTS)) {
        let batch = batch?;
        let (a, f, y) = tensors::<B>(&batch, cfg.image_size as usize, device);
        let out = model.forward(a, f, batch.segments);
        let loss: f64 = ce.forward(out.fused.clone(), y).into_scalar().elem();
        loss_sum += loss * batch.labels.len() as f64;
        fused.extend(logits_vec(out.fused));
        audio.extend(logits_vec(out.audio));
        visual.extend(logits_vec(out.visual));
        labels.extend(batch.labels);
    }
    let bg = i64::from(AVE_BACKGROUND);
    Ok(LocalizeMetrics {
        loss: loss_sum / labels.len().max(1) as f64,
        segments: labels.len(),
        fused: segment_accuracy(&fused, &labels, classes, bg),
        audio: segment_accuracy(&audio, &labels, classes, bg),
        visual: segment_accuracy(&visual, &labels, classes, bg),
    })
}

const CSV_HEADER: &str =
    "epoch,lr,train_loss,mean_k_a,mean_k_v,mean_ratio_a,val_acc,test_loss,test_acc,test_acc_event,test_acc_background,test_acc_audio,test_acc_visual,seconds";

fn csv_row(l: &LocalizeEpoch) -> String {
    format!(
        "{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.2}",
        l.epoch,
        l.lr,
        l.train.train_loss,
        l.train.mean_k_a,
        l.train.mean_k_v,
        l.train.mean_ratio_a,
        l.val.fused.all,
        l.test.loss,
        l.test.fused.all,
        l.test.fused.event,
        l.test.fused.background,
        l.test.audio.all,
        l.test.visual.all,
        l.seconds
    )
}

/// Trains one localization run on backend `B`. With `resume`, continues from the run folder's
/// last checkpoint (same config required) and ends exactly as an uninterrupted run would.
pub fn localize<B: AutodiffBackend>(cfg: &LocalizeConfig, device: &B::Device, progress: bool, resume: bool) -> Result<LocalizeSummary> {
    B::seed(device, cfg.seed);
    let dir = cfg.out.join(&cfg.name);
    let (checkpoints, resumed) = Checkpoints::open::<LocalizeMetrics>(&dir, cfg, resume)?;
    let next_epoch = resumed.as_ref().map_or(0, |p| p.next_epoch);
    let path = |name: &str| dir.join(name);
    let train_set = ShardSet::open(&cfg.data, Split::Train)?;
    let val_set = ShardSet::open(&cfg.data, Split::Val).context("localization selects its model on the val split")?;
    let test_set = ShardSet::open(&cfg.data, Split::Test)?;
    // The event classes plus background.
    let classes = train_set.meta.classes.len() + 1;
    anyhow::ensure!(classes as u32 == AVE_BACKGROUND + 1, "{}: expected AVE's {} event classes, found {}", cfg.data.display(), AVE_BACKGROUND, classes - 1);
    let size = LocalizerSize::of(cfg.model);
    let loader = |train: bool| LoaderConfig {
        batch_size: cfg.batch_size,
        frames: AVE_SEGMENTS,
        image_size: size.image as u32,
        train,
        seed: cfg.seed,
        shuffle_buffer: cfg.shuffle_buffer,
        audio_crop: None,
        prefetch: 2,
        subset: Subset::All,
    };
    let mut model = AvLocalizer::<B>::new(cfg.model, classes, device);
    let mut optim = AdamConfig::new().init::<B, AvLocalizer<B>>();
    let (mut best, mut step) = (None::<(f64, usize, LocalizeMetrics)>, 0usize);
    if let Some(p) = &resumed {
        (model, optim) = checkpoints.restore(p, model, optim, device)?;
        (best, step) = (p.best, p.step);
        if progress {
            eprintln!("{}: resuming at epoch {}", cfg.name, p.next_epoch);
        }
    }
    // After a restore: the parameters (and their ids) are the checkpoint's.
    let (audio_ids, visual_ids) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    let rule = StepRule { method: cfg.balance, alpha: cfg.alpha, audio_ids, visual_ids };
    let ce = CrossEntropyLossConfig::new().init(device);
    // Logs kept in memory for the table and plots, read once here (a resumed run's earlier epochs).
    let mut logs: Vec<LocalizeEpoch> = read_jsonl(&path("epochs.jsonl"))?;
    let mut steps = StepLog::open(path("steps.jsonl"))?;
    let bar = crate::progress::epoch_bar(progress, cfg.epochs, &cfg.name);
    bar.skip(next_epoch);
    for epoch in next_epoch..cfg.epochs {
        let started = Instant::now();
        B::seed(device, cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let lr = cfg.lr * cfg.lr_gamma.powi((epoch / cfg.lr_step.max(1)) as i32);
        let active = cfg.modulation_start <= epoch && epoch <= cfg.modulation_end;
        let mut tally = EpochTally::default();
        for batch in train_set.epoch_with(&loader(true), epoch as u64, assemble_segments(AVE_SEGMENTS)) {
            let batch = batch?;
            let (a, f, y) = tensors::<B>(&batch, size.image, device);
            let out = model.forward(a, f, batch.segments);
            let loss = ce.forward(out.fused, y);
            // Uni-modal scores summed over every segment of the batch.
            let (next, loss_value, c) = balanced_step(model, &mut optim, lr, loss, out.audio, out.visual, &batch.labels, &rule, active);
            model = next;
            steps.record(&bar, StepRecord::new(step, epoch, loss_value, &c, rule.applies(active)))?;
            step += 1;
            tally.add(loss_value, batch.clips(), c);
        }
        let valid = model.valid();
        let val = eval_localizer(&valid, &val_set, &loader(false), device)?;
        let test = eval_localizer(&valid, &test_set, &loader(false), device)?;
        let log = LocalizeEpoch { epoch, lr, train: tally.stats(), val, test, seconds: started.elapsed().as_secs_f64() };
        append_line(&path("epochs.jsonl"), &log)?;
        bar.epoch_done(format!(
            "epoch {epoch}: loss {:.3}  test segment acc {:.3} (event {:.3}, background {:.3}; audio {:.3}, visual {:.3})  k_a {:.2} k_v {:.2}",
            log.train.train_loss,
            test.fused.all,
            test.fused.event,
            test.fused.background,
            test.audio.all,
            test.visual.all,
            log.train.mean_k_a,
            log.train.mean_k_v
        ));
        if best.as_ref().is_none_or(|(s, _, _)| val.fused.all > *s) {
            best = Some((val.fused.all, epoch, test));
            valid.save_file(path("model-best"), &BinFileRecorder::<FullPrecisionSettings>::new()).context("saving the best model")?;
        }
        checkpoints.save(epoch, &model, &optim, &Progress { next_epoch: epoch + 1, step, best })?;
        logs.push(log);
        write_csv(&path("epochs.csv"), CSV_HEADER, logs.iter().map(csv_row))?;
        crate::plot::localization_plots(&dir, &logs, &steps.records)?;
    }
    bar.finish();
    let (_, best_epoch, test) = best.context("no epoch ran")?;
    let summary = LocalizeSummary { best_epoch, test, run_dir: dir.clone() };
    std::fs::write(path("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}
