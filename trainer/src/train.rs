//! The classifier's training: SGD (momentum, weight decay) with StepLR, cross-entropy on the
//! fused logits, the balancing rule on the encoders' conv gradients, evaluation of fused / audio /
//! visual heads every epoch, model selection on a validation hold-out carved from train (on test
//! only with `select_on_test`), and a run folder with the resolved config and the logs. The loop
//! itself is `driver::drive`; this file is what the classifier brings to it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::ParamId;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::Split;
use serde::{Deserialize, Serialize};

use crate::balance::{encoder_conv_ids, logits_vec};
use crate::data::{Batch, LoaderConfig, ShardSet, Subset};
use crate::driver::{drive, Run, Schedule};
use crate::methods::params::Parts;
use crate::methods::umt::Teachers;
use crate::methods::Balance;
use crate::methods::{FeatureStep, Head, HeadLosses, MethodParams, SampledFeatures};
use crate::metrics::{accuracy, evaluate, Contribution, HeadMetrics};
use crate::model::{AvClassifier, FusionKind};
use crate::run_log::{StepRecord, TrainStats};
use crate::task::{Evaluated, FeatureHook, Forward, Task};

pub use crate::run_log::{EpochLog, EvalMetrics};
pub use crate::train_config::{TrainConfig, TrainHead};

/// What a run ends with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub best_epoch: usize,
    /// Test metrics at the selected epoch.
    pub test: EvalMetrics,
    /// Test metrics after the last epoch (selection on a small validation split can pick an
    /// epoch before the slow modality has learned).
    pub last: EvalMetrics,
    pub run_dir: PathBuf,
}

fn tensors<B: Backend>(b: &Batch, image: usize, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 1, Int>) {
    let n = b.len();
    let [f, t] = b.audio_shape;
    let audio = Tensor::from_data(TensorData::new(b.audio.clone(), [n, 1, f, t]), device);
    let frames_per = b.frames.len() / (3 * image * image);
    let frames = Tensor::from_data(TensorData::new(b.frames.clone(), [frames_per, 3, image, image]), device);
    let labels = Tensor::from_data(TensorData::new(b.labels.clone(), [n]), device);
    (audio, frames, labels)
}

/// Evaluates a model (no autodiff) on one loader.
pub fn eval_split<B: Backend>(model: &AvClassifier<B>, set: &ShardSet, cfg: &LoaderConfig, image: usize, device: &B::Device) -> Result<EvalMetrics> {
    let classes = set.meta.classes.len();
    let (mut fused, mut audio, mut visual, mut labels) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The fused logits with the visual, the audio, and both features zeroed.
    let (mut audio_only, mut visual_only, mut neither) = (Vec::new(), Vec::new(), Vec::new());
    let ce = CrossEntropyLossConfig::new().init(device);
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for batch in set.epoch(cfg, 0) {
        let batch = batch?;
        let (a, f, y) = tensors::<B>(&batch, image, device);
        let (a, v) = model.features(a, f);
        let out = model.fuse(a.clone(), v.clone());
        let loss: f64 = ce.forward(out.fused.clone(), y).into_scalar().elem();
        loss_sum += loss * batch.len() as f64;
        n += batch.len();
        fused.extend(logits_vec(out.fused));
        audio.extend(logits_vec(out.audio));
        visual.extend(logits_vec(out.visual));
        audio_only.extend(logits_vec(model.fuse(a.clone(), v.zeros_like()).fused));
        visual_only.extend(logits_vec(model.fuse(a.zeros_like(), v.clone()).fused));
        neither.extend(logits_vec(model.fuse(a.zeros_like(), v.zeros_like()).fused));
        labels.extend(batch.labels);
    }
    let acc = |l: &[f32]| accuracy(l, &labels, classes);
    Ok(EvalMetrics {
        loss: loss_sum / n.max(1) as f64,
        fused: evaluate(&fused, &labels, classes),
        audio: evaluate(&audio, &labels, classes),
        visual: evaluate(&visual, &labels, classes),
        contribution: Contribution::from_accuracies(acc(&fused), acc(&audio_only), acc(&visual_only), acc(&neither)),
    })
}

/// A split's pooled features (row-major `[n, dim]`), the joint model's uni-modal logits and the
/// labels, in the loader's order.
pub struct Features {
    pub dim: usize,
    pub audio: Vec<f32>,
    pub visual: Vec<f32>,
    pub audio_logits: Vec<f32>,
    pub visual_logits: Vec<f32>,
    pub labels: Vec<i64>,
}

/// The loader of a run's config over `subset` of `set`: the training transform with `train`,
/// else the evaluation one (no augmentation). VGGSound's spectrograms are cropped to 626 columns.
pub fn loader_config(cfg: &TrainConfig, set: &ShardSet, train: bool, subset: Subset) -> LoaderConfig {
    LoaderConfig {
        batch_size: cfg.batch_size,
        frames: cfg.frames,
        image_size: cfg.model.image_size() as u32,
        train,
        seed: cfg.seed,
        shuffle_buffer: cfg.shuffle_buffer,
        audio_crop: (set.meta.preset.audio.name == "vggsound-stft").then_some(626),
        prefetch: 2,
        subset,
        drop_last: train && cfg.drop_last,
    }
}

/// The features of every clip `cfg` loads from `set`.
pub fn features_of<B: Backend>(model: &AvClassifier<B>, set: &ShardSet, cfg: &LoaderConfig, device: &B::Device) -> Result<Features> {
    features_of_batches(model, set, cfg, 0, usize::MAX, device)
}

/// The features of the first `batches` batches `cfg` loads from `set` in `epoch`'s order.
fn features_of_batches<B: Backend>(
    model: &AvClassifier<B>,
    set: &ShardSet,
    cfg: &LoaderConfig,
    epoch: u64,
    batches: usize,
    device: &B::Device,
) -> Result<Features> {
    let mut f = Features { dim: 0, audio: Vec::new(), visual: Vec::new(), audio_logits: Vec::new(), visual_logits: Vec::new(), labels: Vec::new() };
    for batch in set.epoch(cfg, epoch).into_iter().take(batches) {
        let batch = batch?;
        let (a, fr, _) = tensors::<B>(&batch, cfg.image_size as usize, device);
        let logits = model.forward(a.clone(), fr.clone());
        let (a, v) = model.clip_features(a, fr);
        f.dim = a.dims()[1];
        f.audio.extend(logits_vec(a));
        f.visual.extend(logits_vec(v));
        f.audio_logits.extend(logits_vec(logits.audio));
        f.visual_logits.extend(logits_vec(logits.visual));
        f.labels.extend(batch.labels);
    }
    Ok(f)
}

/// The run folder: `<out>/<name>`.
pub fn run_dir(cfg: &TrainConfig) -> PathBuf {
    crate::run_folder::run_dir(&cfg.out, &cfg.name)
}

/// The evaluation columns of `epochs.csv`, for the val and the test split: the loss, then
/// accuracy, macro-F1 and mAP of each head (`test_acc`, `test_macro_f1_audio`, ...): every metric
/// `epochs.jsonl` has.
type HeadOf = fn(&EvalMetrics) -> &HeadMetrics;
type Metric = fn(&HeadMetrics) -> f64;
const CSV_HEADS: [(&str, HeadOf); 3] = [("", |m| &m.fused), ("_audio", |m| &m.audio), ("_visual", |m| &m.visual)];
const CSV_METRICS: [(&str, Metric); 3] = [("acc", |h| h.accuracy), ("macro_f1", |h| h.macro_f1), ("map", |h| h.map)];

fn csv_header() -> String {
    let mut cols: Vec<String> = ["epoch", "lr", "train_loss", "mean_k_a", "mean_k_v", "mean_ratio_a"].map(String::from).to_vec();
    for split in ["val", "test"] {
        cols.push(format!("{split}_loss"));
        for (head, _) in CSV_HEADS {
            cols.extend(CSV_METRICS.iter().map(|(metric, _)| format!("{split}_{metric}{head}")));
        }
    }
    cols.push("seconds".into());
    cols.join(",")
}

fn csv_row(l: &EpochLog) -> String {
    let mut cols = vec![l.epoch.to_string(), l.lr.to_string()];
    cols.extend([l.train.train_loss, l.train.mean_k_a, l.train.mean_k_v, l.train.mean_ratio_a].map(|x| format!("{x:.6}")));
    for split in [l.val, Some(l.test)] {
        // A run without a hold-out leaves its val columns empty.
        let cell = |f: &dyn Fn(&EvalMetrics) -> f64| split.map_or(String::new(), |m| format!("{:.6}", f(&m)));
        cols.push(cell(&|m| m.loss));
        for (_, head) in CSV_HEADS {
            cols.extend(CSV_METRICS.iter().map(|(_, metric)| cell(&|m| metric(head(m)))));
        }
    }
    cols.push(format!("{:.2}", l.seconds));
    cols.join(",")
}

/// The classifier as a [`Task`] of the epoch driver.
struct Classification<'a, B: AutodiffBackend> {
    cfg: &'a TrainConfig,
    train_set: ShardSet,
    test_set: ShardSet,
    image: usize,
    fit: Subset,
    fit_rows: usize,
    holdout: Option<Subset>,
    device: B::Device,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> Classification<'_, B> {
    /// Train and test share the preset (`ensure_compatible`), so one loader config serves both.
    fn loader(&self, train: bool, subset: Subset) -> LoaderConfig {
        loader_config(self.cfg, &self.train_set, train, subset)
    }
}

impl<B: AutodiffBackend> Task<B> for Classification<'_, B> {
    type Model = AvClassifier<B>;
    type Batch = Batch;
    type Selected = EvalMetrics;
    type Log = EpochLog;

    fn encoders(model: &AvClassifier<B>) -> (Vec<ParamId>, Vec<ParamId>) {
        encoder_conv_ids(&model.audio_net, &model.visual_net)
    }

    fn batches(&self, epoch: usize) -> Receiver<Result<Batch>> {
        self.train_set.epoch(&self.loader(true, self.fit), epoch as u64)
    }

    fn forward(&self, model: &AvClassifier<B>, batch: Batch, features: FeatureHook<B>) -> Forward<B> {
        let (audio, frames, y) = tensors::<B>(&batch, self.image, &self.device);
        let (a, v) = model.features(audio.clone(), frames.clone());
        let head = |a, v| model.fuse(a, v);
        let (a, v) = features(FeatureStep { audio: a, visual: v, labels: &batch.labels, head: &head, inputs: Some((audio, frames)) });
        let logits = model.fuse(a.clone(), v.clone());
        let trained = match self.cfg.train_head {
            TrainHead::Fused => logits.fused.clone(),
            TrainHead::Audio => logits.audio.clone(),
            TrainHead::Visual => logits.visual.clone(),
        };
        Forward { logits, features: Some((a, v)), trained, aux_loss: None, targets: y, samples: batch.len(), labels: batch.labels }
    }

    fn parts(model: &AvClassifier<B>) -> Parts {
        Parts::of(&model.audio_net, &model.visual_net, &model.fusion)
    }

    fn steps_per_epoch(&self) -> usize {
        if self.cfg.drop_last {
            self.fit_rows / self.cfg.batch_size
        } else {
            self.fit_rows.div_ceil(self.cfg.batch_size)
        }
    }

    fn forward_one(&self, model: &AvClassifier<B>, batch: Batch, modality: Head) -> Result<Forward<B>> {
        anyhow::ensure!(model.fusion.kind() == FusionKind::Shared, "a one-modality step needs --fusion shared");
        let (audio, frames, y) = tensors::<B>(&batch, self.image, &self.device);
        let h = match modality {
            Head::Audio => model.audio_features(audio),
            Head::Visual => model.visual_features(frames, batch.len()),
            Head::Fused => anyhow::bail!("a one-modality step is audio or visual"),
        };
        // The shared head on one modality: its logits are the same through either slot.
        let logits = model.fusion.forward(h.clone(), h.clone());
        let trained = logits.audio.clone();
        Ok(Forward { logits, features: Some((h.clone(), h)), trained, aux_loss: None, targets: y, samples: batch.len(), labels: batch.labels })
    }

    fn sample_features(&self, model: &AvClassifier<B::InnerBackend>, epoch: usize) -> Result<Option<SampledFeatures>> {
        let take = (self.steps_per_epoch() / 10).max(1);
        let f = features_of_batches(model, &self.train_set, &self.loader(true, self.fit), epoch as u64, take, &self.device)?;
        Ok(Some(SampledFeatures { dim: f.dim, classes: self.train_set.meta.classes.len(), audio: f.audio, visual: f.visual, labels: f.labels }))
    }

    fn holdout_losses(&self, model: &AvClassifier<B::InnerBackend>) -> Result<Option<HeadLosses>> {
        let Some(h) = self.holdout else { return Ok(None) };
        let ce = CrossEntropyLossConfig::new().init(&self.device);
        let (mut sums, mut n) = ([0.0f64; 3], 0usize);
        for batch in self.train_set.epoch(&self.loader(false, h), 0) {
            let batch = batch?;
            let (a, f, y) = tensors::<B::InnerBackend>(&batch, self.image, &self.device);
            let out = model.forward(a, f);
            for (i, z) in [out.audio, out.visual, out.fused].into_iter().enumerate() {
                let l: f64 = ce.forward(z, y.clone()).into_scalar().elem();
                sums[i] += l * batch.len() as f64;
            }
            n += batch.len();
        }
        let mean = |i: usize| sums[i] / n.max(1) as f64;
        Ok(Some(HeadLosses { audio: mean(0), visual: mean(1), fused: mean(2) }))
    }

    fn padded(&self, mut batch: Batch, keep: Head) -> Result<Batch> {
        match keep {
            Head::Audio => batch.frames.fill(0.0),
            Head::Visual => batch.audio.fill(0.0),
            Head::Fused => {}
        }
        Ok(batch)
    }

    fn padded_selection_loss(&self, model: &AvClassifier<B::InnerBackend>, keep: Head) -> Result<Option<f64>> {
        // The split `evaluate` selects on: the hold-out, or the test split without one.
        let (set, subset) = match self.holdout {
            Some(h) => (&self.train_set, h),
            None => (&self.test_set, Subset::All),
        };
        let ce = CrossEntropyLossConfig::new().init(&self.device);
        let mut sum = 0.0f64;
        for batch in set.epoch(&self.loader(false, subset), 0) {
            let batch = <Self as Task<B>>::padded(self, batch?, keep)?;
            let (a, f, y) = tensors::<B::InnerBackend>(&batch, self.image, &self.device);
            let loss: f64 = ce.forward(model.forward(a, f).fused, y).into_scalar().elem();
            sum += loss;
        }
        Ok(Some(sum))
    }

    fn evaluate(
        &self,
        model: &AvClassifier<B::InnerBackend>,
        epoch: usize,
        lr: f64,
        train: TrainStats,
        started: Instant,
    ) -> Result<Evaluated<EvalMetrics, EpochLog>> {
        let val = match self.holdout {
            Some(h) => Some(eval_split(model, &self.train_set, &self.loader(false, h), self.image, &self.device)?),
            None => None,
        };
        let test = eval_split(model, &self.test_set, &self.loader(false, Subset::All), self.image, &self.device)?;
        let log = EpochLog { epoch, lr, train, val, test, seconds: started.elapsed().as_secs_f64() };
        Ok(Evaluated { score: val.map_or(test.fused.accuracy, |v| v.fused.accuracy), selected: test, log })
    }

    fn summary_line(&self, l: &EpochLog) -> String {
        format!(
            "epoch {:3}: loss {:.3}  test acc {:.3} (audio {:.3}, visual {:.3})  k_a {:.2} k_v {:.2}  {:.1}s",
            l.epoch, l.train.train_loss, l.test.fused.accuracy, l.test.audio.accuracy, l.test.visual.accuracy, l.train.mean_k_a, l.train.mean_k_v, l.seconds
        )
    }

    fn csv_header(&self) -> String {
        csv_header()
    }

    fn csv_row(&self, l: &EpochLog) -> String {
        csv_row(l)
    }

    fn plots(&self, dir: &Path, history: &[EpochLog], steps: &[StepRecord]) -> Result<()> {
        crate::plot::classifier_plots(dir, history, steps)
    }

    /// Keeps the selected epoch's model (`model-best.bin`, what `trainer probe` reads).
    fn on_selected(&self, model: &AvClassifier<B::InnerBackend>, dir: &Path) -> Result<()> {
        crate::checkpoint::save_model(model, &dir.join("model-best")).context("saving the selected model")
    }
}

/// The settings of a UMT run's teacher for `head`: the run's, training that modality alone
/// (no method), in `<out>/<name>.teacher-<modality>`.
pub fn teacher_config(cfg: &TrainConfig, head: TrainHead) -> TrainConfig {
    let modality = if head == TrainHead::Audio { "audio" } else { "visual" };
    TrainConfig { name: format!("{}.teacher-{modality}", cfg.name), balance: Balance::None, train_head: head, ..cfg.clone() }
}

/// A UMT run's teachers: each trained first (resumed if it was interrupted, read back if it
/// finished with the same settings), its selected epoch's model kept.
fn train_teachers<B: AutodiffBackend>(cfg: &TrainConfig, classes: usize, device: &B::Device, progress: bool) -> Result<Teachers> {
    let teacher = |head| -> Result<PathBuf> {
        let t = teacher_config(cfg, head);
        if crate::run_folder::finished::<_, RunSummary>(&run_dir(&t), &t)?.is_none() {
            let resume = run_dir(&t).join("config.json").exists();
            train::<B>(&t, device, progress, resume).with_context(|| format!("training the UMT teacher {}", t.name))?;
        }
        Ok(run_dir(&t).join("model-best.bin"))
    };
    Ok(Teachers {
        audio: teacher(TrainHead::Audio)?,
        visual: teacher(TrainHead::Visual)?,
        preset: cfg.model,
        arch: cfg.arch,
        frames: cfg.frames,
        fusion: cfg.fusion,
        classes,
    })
}

/// Trains one run on backend `B`. With `resume`, continues from the run folder's last
/// checkpoint (same config required) and ends exactly as an uninterrupted run would.
pub fn train<B: AutodiffBackend>(cfg: &TrainConfig, device: &B::Device, progress: bool, resume: bool) -> Result<RunSummary> {
    cfg.validate()?;
    B::seed(device, cfg.seed);
    // The data first: a bad shard stops the run before its folder exists.
    let train_set = ShardSet::open(&cfg.data, Split::Train)?;
    let test_set = ShardSet::open(&cfg.data, Split::Test)?;
    train_set.ensure_compatible(&test_set)?;
    let (fit, holdout) = if cfg.select_on_test || cfg.val_fraction <= 0.0 {
        (Subset::All, None)
    } else {
        (Subset::Fit { val_fraction: cfg.val_fraction }, Some(Subset::Holdout { val_fraction: cfg.val_fraction }))
    };
    if let Some(h) = holdout {
        // The fit rows are the others: one pass over the clip ids counts both sides.
        let held = train_set.count(h)?;
        anyhow::ensure!(
            held > 0,
            "the validation hold-out (--val-fraction {}) of {} train clips in {} is empty: raise --val-fraction, or pass --select-on-test",
            cfg.val_fraction,
            train_set.rows(),
            cfg.data.display()
        );
        anyhow::ensure!(held < train_set.rows(), "--val-fraction {} leaves no train clips to fit on in {}", cfg.val_fraction, cfg.data.display());
    }
    let classes = train_set.meta.classes.len();
    let fit_rows = train_set.count(fit)?;
    anyhow::ensure!(
        !cfg.drop_last || fit_rows >= cfg.batch_size,
        "--drop-last with {fit_rows} training clips and --batch-size {} leaves no batch to train on",
        cfg.batch_size
    );
    let teachers = if cfg.balance == Balance::Umt { Some(train_teachers::<B>(cfg, classes, device, progress)?) } else { None };
    let model = AvClassifier::<B>::with_arch(cfg.model, cfg.arch, cfg.frames, cfg.fusion, classes, device);
    let task = Classification {
        cfg,
        train_set,
        test_set,
        image: cfg.model.image_size(),
        fit,
        fit_rows,
        holdout,
        _backend: std::marker::PhantomData,
        device: device.clone(),
    };
    let schedule = Schedule {
        epochs: cfg.epochs,
        lr: cfg.lr,
        lr_step: cfg.lr_step,
        lr_gamma: cfg.lr_gamma,
        lr_decays: None,
        seed: cfg.seed,
        balance: cfg.balance,
        method: MethodParams { settings: cfg.methods, teachers, ..MethodParams::new(cfg.alpha, cfg.seed) },
        modulation_start: cfg.modulation_start,
        modulation_end: cfg.modulation_end,
        optimizer: cfg.optimizer,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    let dir = run_dir(cfg);
    let run = Run { schedule: &schedule, name: &cfg.name, dir: &dir, config: cfg, progress, resume };
    let done = drive(&task, &run, model, device)?;
    let last = done.history.last().context("no epoch ran")?.test;
    let summary = RunSummary { best_epoch: done.best_epoch, test: done.selected, last, run_dir: dir.clone() };
    datasets::durable::write_atomic(&dir.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(summary)
}
