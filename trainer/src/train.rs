//! The training loop: SGD (momentum, weight decay) with StepLR, cross-entropy on the fused
//! logits, the balancing rule on the encoders' conv gradients, evaluation of fused / audio /
//! visual heads every epoch, model selection on a validation hold-out carved from train (on test
//! only with `select_on_test`), and a run folder with the resolved config and the logs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::Split;
use serde::{Deserialize, Serialize};

use crate::balance::{balanced_step, encoder_conv_ids, logits_vec, Balance, EpochTally, StepRecord, StepRule, TrainStats};
use crate::checkpoint::{Checkpoints, Progress};
use crate::data::{Batch, LoaderConfig, ShardSet, Subset};
use crate::metrics::{evaluate, HeadMetrics};
use crate::model::{AvClassifier, FusionKind, ModelPreset};
use crate::run_log::{append_line, read_jsonl, write_csv, StepLog};

/// Everything that decides a run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// A dataset's shard folder, e.g. `out/cremad`.
    pub data: PathBuf,
    pub out: PathBuf,
    pub name: String,
    pub model: ModelPreset,
    pub fusion: FusionKind,
    pub balance: Balance,
    pub alpha: f64,
    pub modulation_start: usize,
    pub modulation_end: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub lr_step: usize,
    pub lr_gamma: f64,
    pub frames: usize,
    pub seed: u64,
    pub val_fraction: f64,
    pub select_on_test: bool,
    pub shuffle_buffer: usize,
    /// Which logits the loss trains: `fused` (the method), or one modality's share alone, which
    /// trains that encoder and its half of the classifier only: the uni-modal ceiling.
    #[serde(default)]
    pub train_head: TrainHead,
}

/// The logits the training loss is computed on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrainHead {
    #[default]
    Fused,
    /// Audio alone (the other encoder gets no gradient).
    Audio,
    /// Vision alone.
    Visual,
}

/// Evaluation of one split.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub loss: f64,
    pub fused: HeadMetrics,
    pub audio: HeadMetrics,
    pub visual: HeadMetrics,
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
    let ce = CrossEntropyLossConfig::new().init(device);
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for batch in set.epoch(cfg, 0) {
        let batch = batch?;
        let (a, f, y) = tensors::<B>(&batch, image, device);
        let out = model.forward(a, f);
        let loss: f64 = ce.forward(out.fused.clone(), y).into_scalar().elem();
        loss_sum += loss * batch.len() as f64;
        n += batch.len();
        fused.extend(logits_vec(out.fused));
        audio.extend(logits_vec(out.audio));
        visual.extend(logits_vec(out.visual));
        labels.extend(batch.labels);
    }
    Ok(EvalMetrics {
        loss: loss_sum / n.max(1) as f64,
        fused: evaluate(&fused, &labels, classes),
        audio: evaluate(&audio, &labels, classes),
        visual: evaluate(&visual, &labels, classes),
    })
}

/// The run folder: `<out>/<name>`.
pub fn run_dir(cfg: &TrainConfig) -> PathBuf {
    cfg.out.join(&cfg.name)
}

const CSV_HEADER: &str = "epoch,lr,train_loss,mean_k_a,mean_k_v,mean_ratio_a,val_acc,val_acc_audio,val_acc_visual,test_loss,test_acc,test_acc_audio,test_acc_visual,test_macro_f1,test_map,seconds";

fn csv_row(l: &EpochLog) -> String {
    let v = |m: Option<EvalMetrics>, f: fn(&EvalMetrics) -> f64| m.map_or(String::new(), |m| format!("{:.6}", f(&m)));
    format!(
        "{},{},{:.6},{:.6},{:.6},{:.6},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.2}",
        l.epoch,
        l.lr,
        l.train.train_loss,
        l.train.mean_k_a,
        l.train.mean_k_v,
        l.train.mean_ratio_a,
        v(l.val, |m| m.fused.accuracy),
        v(l.val, |m| m.audio.accuracy),
        v(l.val, |m| m.visual.accuracy),
        l.test.loss,
        l.test.fused.accuracy,
        l.test.audio.accuracy,
        l.test.visual.accuracy,
        l.test.fused.macro_f1,
        l.test.fused.map,
        l.seconds
    )
}

/// `epochs.csv` is derived from `epochs.jsonl` (the source of truth) when a run (re)starts.
fn rewrite_csv(dir: &Path, history: &[EpochLog]) -> Result<()> {
    write_csv(&dir.join("epochs.csv"), CSV_HEADER, history.iter().map(csv_row))
}

fn append_csv(path: &Path, log: &EpochLog) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).with_context(|| path.display().to_string())?;
    writeln!(f, "{}", csv_row(log))?;
    Ok(())
}

/// Trains one run on backend `B`. With `resume`, continues from the run folder's last
/// checkpoint (same config required) and ends exactly as an uninterrupted run would.
pub fn train<B: AutodiffBackend>(cfg: &TrainConfig, device: &B::Device, progress: bool, resume: bool) -> Result<RunSummary> {
    B::seed(device, cfg.seed);
    anyhow::ensure!(
        cfg.train_head == TrainHead::Fused || cfg.balance == Balance::None,
        "a uni-modal run (train head {:?}) has nothing to balance: use --balance none",
        cfg.train_head
    );
    let dir = run_dir(cfg);
    let (checkpoints, resumed) = Checkpoints::open::<EvalMetrics>(&dir, cfg, resume)?;
    let next_epoch = resumed.as_ref().map_or(0, |p| p.next_epoch);
    // Logs kept in memory for the plots, read once here (a resumed run's earlier epochs).
    let mut history: Vec<EpochLog> = read_jsonl(&dir.join("epochs.jsonl"))?;
    let mut steps = StepLog::open(dir.join("steps.jsonl"))?;
    rewrite_csv(&dir, &history)?;
    let train_set = ShardSet::open(&cfg.data, Split::Train)?;
    let test_set = ShardSet::open(&cfg.data, Split::Test)?;
    let classes = train_set.meta.classes.len();
    let image = cfg.model.image_size();
    let audio_crop = (train_set.meta.preset.audio.name == "vggsound-stft").then_some(626);
    let loader = |train: bool, subset: Subset| LoaderConfig {
        batch_size: cfg.batch_size,
        frames: cfg.frames,
        image_size: image as u32,
        train,
        seed: cfg.seed,
        shuffle_buffer: cfg.shuffle_buffer,
        audio_crop,
        prefetch: 2,
        subset,
    };
    let (fit, holdout) = if cfg.select_on_test || cfg.val_fraction <= 0.0 {
        (Subset::All, None)
    } else {
        (Subset::Fit { val_fraction: cfg.val_fraction }, Some(Subset::Holdout { val_fraction: cfg.val_fraction }))
    };

    let mut model = AvClassifier::<B>::new(cfg.model, cfg.fusion, classes, device);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: cfg.momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: cfg.weight_decay as f32 }))
        .init::<B, AvClassifier<B>>();
    let (mut best, mut step) = (None, 0usize);
    if let Some(p) = &resumed {
        (model, optim) = checkpoints.restore(p, model, optim, device)?;
        (best, step) = (p.best, p.step);
        if progress {
            eprintln!("{}: resuming at epoch {}", cfg.name, p.next_epoch);
        }
    }
    let (audio_ids, visual_ids) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    let rule = StepRule { method: cfg.balance, alpha: cfg.alpha, audio_ids, visual_ids };
    let ce = CrossEntropyLossConfig::new().init(device);
    let bar = crate::progress::epoch_bar(progress, cfg.epochs, &cfg.name);
    bar.skip(next_epoch);
    for epoch in next_epoch..cfg.epochs {
        let started = Instant::now();
        // Reseeded per epoch, so the GE noise of a resumed run is the uninterrupted run's.
        B::seed(device, cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let lr = cfg.lr * cfg.lr_gamma.powi((epoch / cfg.lr_step.max(1)) as i32);
        let active = cfg.modulation_start <= epoch && epoch <= cfg.modulation_end;
        let mut tally = EpochTally::default();
        for batch in train_set.epoch(&loader(true, fit), epoch as u64) {
            let batch = batch?;
            let (a, f, y) = tensors::<B>(&batch, image, device);
            let out = model.forward(a, f);
            let trained = match cfg.train_head {
                TrainHead::Fused => out.fused.clone(),
                TrainHead::Audio => out.audio.clone(),
                TrainHead::Visual => out.visual.clone(),
            };
            let loss = ce.forward(trained, y);
            let (next, loss_value, c) = balanced_step(model, &mut optim, lr, loss, out.audio, out.visual, &batch.labels, &rule, active);
            model = next;
            steps.record(&bar, StepRecord::new(step, epoch, loss_value, &c, rule.applies(active)))?;
            step += 1;
            tally.add(loss_value, batch.len(), c);
        }
        let valid = model.valid();
        let val = match holdout {
            Some(h) => Some(eval_split(&valid, &train_set, &loader(false, h), image, device)?),
            None => None,
        };
        let test = eval_split(&valid, &test_set, &loader(false, Subset::All), image, device)?;
        let log = EpochLog { epoch, lr, train: tally.stats(), val, test, seconds: started.elapsed().as_secs_f64() };
        append_line(&dir.join("epochs.jsonl"), &log)?;
        append_csv(&dir.join("epochs.csv"), &log)?;
        history.push(log.clone());
        crate::plot::classifier_plots(&dir, &history, &steps.records)?;
        bar.epoch_done(format!(
            "epoch {epoch:3}: loss {:.3}  test acc {:.3} (audio {:.3}, visual {:.3})  k_a {:.2} k_v {:.2}  {:.1}s",
            log.train.train_loss, test.fused.accuracy, test.audio.accuracy, test.visual.accuracy, log.train.mean_k_a, log.train.mean_k_v, log.seconds
        ));
        let score = val.map_or(test.fused.accuracy, |v| v.fused.accuracy);
        if best.as_ref().is_none_or(|(s, _, _): &(f64, usize, EvalMetrics)| score > *s) {
            best = Some((score, epoch, test));
        }
        checkpoints.save(epoch, &model, &optim, &Progress { next_epoch: epoch + 1, step, best })?;
    }
    bar.finish();
    let (_, best_epoch, test) = best.context("no epoch ran")?;
    let last = history.last().context("no epoch ran")?.test;
    let summary = RunSummary { best_epoch, test, last, run_dir: dir.clone() };
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}
