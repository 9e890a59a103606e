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
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::Split;
use serde::{Deserialize, Serialize};

use crate::balance::{coefficients, encoder_conv_ids, modulate, Balance, Coefficients};
use crate::data::{Batch, LoaderConfig, ShardSet, Subset};
use crate::metrics::{evaluate, HeadMetrics};
use crate::model::{AvClassifier, FusionKind, ModelPreset};

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
    pub train_loss: f64,
    pub mean_k_a: f64,
    pub mean_k_v: f64,
    pub mean_ratio_a: f64,
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

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data")
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
        fused.extend(to_vec(out.fused));
        audio.extend(to_vec(out.audio));
        visual.extend(to_vec(out.visual));
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

fn append_line(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| path.display().to_string())?;
    writeln!(f, "{}", serde_json::to_string(value)?)?;
    Ok(())
}

/// Trains one run on backend `B`.
pub fn train<B: AutodiffBackend>(cfg: &TrainConfig, device: &B::Device, progress: bool) -> Result<RunSummary> {
    B::seed(device, cfg.seed);
    let dir = run_dir(cfg);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(cfg)?)?;
    for f in ["epochs.jsonl", "steps.jsonl"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
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
    let (audio_ids, visual_ids) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: cfg.momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: cfg.weight_decay as f32 }))
        .init::<B, AvClassifier<B>>();
    let ce = CrossEntropyLossConfig::new().init(device);
    let mut best: Option<(f64, usize, EvalMetrics)> = None;
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        let started = Instant::now();
        let lr = cfg.lr * cfg.lr_gamma.powi((epoch / cfg.lr_step.max(1)) as i32);
        let active = cfg.modulation_start <= epoch && epoch <= cfg.modulation_end;
        let (mut loss_sum, mut seen, mut ks) = (0.0, 0usize, Vec::<Coefficients>::new());
        for batch in train_set.epoch(&loader(true, fit), epoch as u64) {
            let batch = batch?;
            let (a, f, y) = tensors::<B>(&batch, image, device);
            let out = model.forward(a, f);
            let loss = ce.forward(out.fused.clone(), y);
            let c = coefficients(&to_vec(out.audio.detach()), &to_vec(out.visual.detach()), &batch.labels, classes, cfg.alpha);
            let loss_value: f64 = loss.clone().into_scalar().elem();
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            modulate::<B>(cfg.balance, &c, active, &audio_ids, &visual_ids, &mut grads);
            model = optim.step(lr, model, grads);
            append_line(&dir.join("steps.jsonl"), &serde_json::json!({"step": step, "epoch": epoch, "loss": loss_value, "ratio_a": c.ratio_a, "k_a": c.k_a, "k_v": c.k_v, "modulated": active && cfg.balance != Balance::None}))?;
            step += 1;
            loss_sum += loss_value * batch.len() as f64;
            seen += batch.len();
            ks.push(c);
        }
        let valid = model.valid();
        let val = match holdout {
            Some(h) => Some(eval_split(&valid, &train_set, &loader(false, h), image, device)?),
            None => None,
        };
        let test = eval_split(&valid, &test_set, &loader(false, Subset::All), image, device)?;
        let mean = |f: fn(&Coefficients) -> f64| ks.iter().map(f).sum::<f64>() / ks.len().max(1) as f64;
        let log = EpochLog {
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            mean_k_a: mean(|c| c.k_a),
            mean_k_v: mean(|c| c.k_v),
            mean_ratio_a: mean(|c| c.ratio_a),
            val,
            test,
            seconds: started.elapsed().as_secs_f64(),
        };
        append_line(&dir.join("epochs.jsonl"), &log)?;
        if progress {
            eprintln!(
                "{} epoch {epoch:3}: loss {:.3}  test acc {:.3} (audio {:.3}, visual {:.3})  k_a {:.2} k_v {:.2}  {:.1}s",
                cfg.name, log.train_loss, test.fused.accuracy, test.audio.accuracy, test.visual.accuracy, log.mean_k_a, log.mean_k_v, log.seconds
            );
        }
        let score = val.map_or(test.fused.accuracy, |v| v.fused.accuracy);
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, epoch, test));
        }
    }
    let (_, best_epoch, test) = best.context("no epoch ran")?;
    let summary = RunSummary { best_epoch, test, run_dir: dir.clone() };
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}
