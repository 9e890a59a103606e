//! Training and evaluation of the localizer: per-segment cross-entropy, Adam (AVGA's optimiser)
//! with a step schedule, the OGM / OGM-GE rule on the encoders' conv weights with uni-modal
//! scores summed over the batch's segments, segment-level accuracy (all, event and background
//! segments) of the fused, audio and visual heads every epoch, model selection on the val split.
//! The loop itself is `driver::drive`; this file is what the localizer brings to it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::ParamId;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::catalog::{AVE_BACKGROUND, AVE_SEGMENTS};
use datasets::Split;
use serde::{Deserialize, Serialize};

use super::data::{assemble_segments, SegmentBatch};
use super::model::{AvLocalizer, LocalizerHead, LocalizerSize};
use super::psp::{avps_loss, avps_targets, AVPS_WEIGHT, PSP_THRESHOLD};
use crate::balance::{encoder_conv_ids, logits_vec};
use crate::data::{LoaderConfig, ShardSet, Subset};
use crate::driver::{drive, Run, Schedule};
use crate::methods::Balance;
use crate::methods::MethodParams;
use crate::model::Logits;
use crate::model::ModelPreset;
use crate::optim::OptimizerKind;
use crate::run_log::{StepRecord, TrainStats};
use crate::task::{Evaluated, FeatureHook, Forward, Task};

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
    /// Adam (AVGA's), AdamW or SGD, with PyTorch's semantics.
    #[serde(default = "adam")]
    pub optimizer: OptimizerKind,
    /// Weight decay (AVGA: none); L2 for SGD and Adam, decoupled for AdamW.
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD's momentum (unused by Adam and AdamW).
    #[serde(default)]
    pub momentum: f64,
    /// The head after the encoders: AVGA or PSP.
    #[serde(default)]
    pub head: LocalizerHead,
    /// At most this many learning-rate decays (PSP: 2), or none.
    #[serde(default)]
    pub lr_decays: Option<usize>,
    /// PSP's pruning threshold (0.099, fully supervised).
    #[serde(default = "psp_threshold")]
    pub psp_threshold: f64,
    /// PSP's weight of the AVPS loss (lambda, 100).
    #[serde(default = "avps_weight")]
    pub avps_weight: f64,
}

fn psp_threshold() -> f64 {
    PSP_THRESHOLD
}

fn avps_weight() -> f64 {
    AVPS_WEIGHT
}

impl LocalizeConfig {
    /// The head's own schedule (lr step, gamma, decays): AVGA's StepLR(15000 iterations, 0.1),
    /// ~290 epochs of AVE at batch 64; PSP's x0.8 every 60 epochs while epoch < 170.
    pub fn head_schedule(head: LocalizerHead) -> (usize, f64, Option<usize>) {
        match head {
            LocalizerHead::Avga => (290, 0.1, None),
            LocalizerHead::Psp => (60, 0.8, Some(2)),
        }
    }
}

impl Default for LocalizeConfig {
    /// `localize`'s defaults: AVGA as its code trains (Adam 1e-3, batch 64, 300 epochs) with
    /// OGM-GE at alpha 0.8 over epochs 0-50, on `out/ave`.
    fn default() -> Self {
        let (lr_step, lr_gamma, lr_decays) = Self::head_schedule(LocalizerHead::Avga);
        Self {
            data: "out/ave".into(),
            out: "runs".into(),
            name: String::new(),
            model: ModelPreset::Paper,
            balance: Balance::OgmGe,
            alpha: 0.8,
            modulation_start: 0,
            modulation_end: 50,
            epochs: 300,
            batch_size: 64,
            lr: 1e-3,
            lr_step,
            lr_gamma,
            seed: 0,
            shuffle_buffer: 1024,
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            momentum: 0.0,
            head: LocalizerHead::Avga,
            lr_decays,
            psp_threshold: crate::localize::psp::PSP_THRESHOLD,
            avps_weight: crate::localize::psp::AVPS_WEIGHT,
        }
    }
}

fn adam() -> OptimizerKind {
    OptimizerKind::Adam
}

pub use crate::metrics::{segment_accuracy, SegmentAccuracy};
pub use crate::run_log::{LocalizeEpoch, LocalizeMetrics};

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

/// The localizer as a [`Task`] of the epoch driver.
struct Localization<B: AutodiffBackend> {
    cfg: LocalizeConfig,
    train_set: ShardSet,
    val_set: ShardSet,
    test_set: ShardSet,
    image: usize,
    device: B::Device,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> Localization<B> {
    fn loader(&self, train: bool) -> LoaderConfig {
        LoaderConfig {
            batch_size: self.cfg.batch_size,
            frames: AVE_SEGMENTS,
            image_size: self.image as u32,
            train,
            seed: self.cfg.seed,
            shuffle_buffer: self.cfg.shuffle_buffer,
            audio_crop: None,
            prefetch: 2,
            subset: Subset::All,
            drop_last: false,
        }
    }
}

impl<B: AutodiffBackend> Task<B> for Localization<B> {
    type Model = AvLocalizer<B>;
    type Batch = SegmentBatch;
    type Selected = LocalizeMetrics;
    type Log = LocalizeEpoch;

    fn encoders(model: &AvLocalizer<B>) -> (Vec<ParamId>, Vec<ParamId>) {
        encoder_conv_ids(&model.audio_net, &model.visual_net)
    }

    fn batches(&self, epoch: usize) -> Receiver<Result<SegmentBatch>> {
        self.train_set.epoch_with(&self.loader(true), epoch as u64, assemble_segments(AVE_SEGMENTS))
    }

    /// Only gradient methods run here (checked in [`localize`]): `features` is not called.
    fn forward(&self, model: &AvLocalizer<B>, batch: SegmentBatch, _features: FeatureHook<B>) -> Forward<B> {
        let (a, f, y) = tensors::<B>(&batch, self.image, &self.device);
        let out = model.forward(a, f, batch.segments);
        // PSP: lambda x AVPS, its targets from the batch's segment labels.
        let aux_loss = out.similarity.map(|sim| {
            let [b, s] = sim.dims();
            let t = avps_targets(&batch.labels, s, i64::from(AVE_BACKGROUND));
            avps_loss(sim, Tensor::from_data(TensorData::new(t, [b, s]), &self.device)) * self.cfg.avps_weight
        });
        // Uni-modal scores summed over every segment of the batch.
        let logits = Logits { fused: out.fused.clone(), audio: out.audio, visual: out.visual };
        Forward { logits, features: None, trained: out.fused, aux_loss, targets: y, samples: batch.clips(), labels: batch.labels }
    }

    fn evaluate(
        &self,
        model: &AvLocalizer<B::InnerBackend>,
        epoch: usize,
        lr: f64,
        train: TrainStats,
        started: Instant,
    ) -> Result<Evaluated<LocalizeMetrics, LocalizeEpoch>> {
        let val = eval_localizer(model, &self.val_set, &self.loader(false), &self.device)?;
        let test = eval_localizer(model, &self.test_set, &self.loader(false), &self.device)?;
        let log = LocalizeEpoch { epoch, lr, train, val, test, seconds: started.elapsed().as_secs_f64() };
        Ok(Evaluated { score: val.fused.all, selected: test, log })
    }

    fn summary_line(&self, l: &LocalizeEpoch) -> String {
        format!(
            "epoch {}: loss {:.3}  test segment acc {:.3} (event {:.3}, background {:.3}; audio {:.3}, visual {:.3})  k_a {:.2} k_v {:.2}",
            l.epoch,
            l.train.train_loss,
            l.test.fused.all,
            l.test.fused.event,
            l.test.fused.background,
            l.test.audio.all,
            l.test.visual.all,
            l.train.mean_k_a,
            l.train.mean_k_v
        )
    }

    fn csv_header(&self) -> String {
        CSV_HEADER.into()
    }

    fn csv_row(&self, l: &LocalizeEpoch) -> String {
        csv_row(l)
    }

    fn plots(&self, dir: &Path, history: &[LocalizeEpoch], steps: &[StepRecord]) -> Result<()> {
        crate::plot::localization_plots(dir, history, steps)
    }

    /// The selected epoch's model is kept as `model-best.bin`.
    fn on_selected(&self, model: &AvLocalizer<B::InnerBackend>, dir: &Path) -> Result<()> {
        crate::checkpoint::save_model(model, &dir.join("model-best")).context("saving the best model")
    }
}

/// Trains one localization run on backend `B`. With `resume`, continues from the run folder's
/// last checkpoint (same config required) and ends exactly as an uninterrupted run would.
pub fn localize<B: AutodiffBackend>(cfg: &LocalizeConfig, device: &B::Device, progress: bool, resume: bool) -> Result<LocalizeSummary> {
    anyhow::ensure!(cfg.batch_size > 0 && cfg.epochs > 0, "--batch-size and --epochs must be at least 1");
    anyhow::ensure!(
        cfg.balance.gradient_only(),
        "--balance {} is not available for localization: only methods acting on gradients are (none, ogm, ogm-ge, ge-only, ogm-ge-adaptive)",
        cfg.balance.name()
    );
    B::seed(device, cfg.seed);
    // The data first: a bad shard stops the run before its folder exists.
    let train_set = ShardSet::open(&cfg.data, Split::Train)?;
    let val_set = ShardSet::open(&cfg.data, Split::Val).context("localization selects its model on the val split")?;
    let test_set = ShardSet::open(&cfg.data, Split::Test)?;
    train_set.ensure_compatible(&val_set)?;
    train_set.ensure_compatible(&test_set)?;
    // The event classes plus background.
    let classes = train_set.meta.classes.len() + 1;
    anyhow::ensure!(classes as u32 == AVE_BACKGROUND + 1, "{}: expected AVE's {} event classes, found {}", cfg.data.display(), AVE_BACKGROUND, classes - 1);
    let model = AvLocalizer::<B>::with_head(cfg.model, cfg.head, cfg.psp_threshold, classes, device);
    let schedule = Schedule {
        epochs: cfg.epochs,
        lr: cfg.lr,
        lr_step: cfg.lr_step,
        lr_gamma: cfg.lr_gamma,
        lr_decays: cfg.lr_decays,
        seed: cfg.seed,
        balance: cfg.balance,
        method: MethodParams::new(cfg.alpha, cfg.seed),
        modulation_start: cfg.modulation_start,
        modulation_end: cfg.modulation_end,
        optimizer: cfg.optimizer,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    let task = Localization {
        cfg: cfg.clone(),
        train_set,
        val_set,
        test_set,
        image: LocalizerSize::of(cfg.model).image,
        _backend: std::marker::PhantomData,
        device: device.clone(),
    };
    let dir = cfg.out.join(&cfg.name);
    // The config's optimiser; the default is AVGA's, PyTorch's Adam (eps 1e-8, not Burn's 1e-5), no decay.
    let run = Run { schedule: &schedule, name: &cfg.name, dir: &dir, config: cfg, progress, resume };
    let done = drive(&task, &run, model, device)?;
    let summary = LocalizeSummary { best_epoch: done.best_epoch, test: done.selected, run_dir: dir.clone() };
    datasets::durable::write_atomic(&dir.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(summary)
}
