//! `trainer probe --run runs/X`: the paper's uni-modal evaluation protocol (ogm-ge-reference.md
//! section 5.6, the maintainers' answer in OGM issue #32): freeze each encoder of a trained run
//! and fit a linear classifier on its pooled features, to measure how good each encoder became
//! inside the joint model, apart from the fusion head it was trained with.
//!
//! Features are computed once with the evaluation transform (middle frame of each segment, no
//! augmentation) on the run's fit rows (train minus its validation hold-out) and on test; a
//! `Linear(d, classes)` per modality (xavier init, as the fusion head's) is trained on them with
//! Adam (PyTorch's), mini-batches of 256, cross-entropy; its test accuracy, macro-F1 and mAP are
//! written to `<run>/probe.json` beside the joint model's own uni-modal heads at the same epoch.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::Linear;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::rng::Rng;
use datasets::Split;
use serde::{Deserialize, Serialize};

use crate::balance::logits_vec;
use crate::data::{ShardSet, Subset};
use crate::metrics::{evaluate, HeadMetrics};
use crate::model::AvClassifier;
use crate::train::{features_of, loader_config, RunSummary, TrainConfig};

/// Which weights of the run are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// The model of the epoch selected on validation (`model-best.bin`).
    Best,
    /// The model after the last epoch trained (the last checkpoint).
    Last,
}

/// How the linear classifiers are fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeConfig {
    pub run: PathBuf,
    pub checkpoint: Which,
    pub epochs: usize,
    pub lr: f64,
    pub seed: u64,
}

/// One modality's probe.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The linear classifier on the frozen encoder's features.
    pub fit: HeadMetrics,
    pub test: HeadMetrics,
    /// The joint model's own uni-modal head on test, for comparison.
    pub joint_head_test: HeadMetrics,
}

/// What `probe.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeReport {
    pub config: ProbeConfig,
    pub epoch: usize,
    pub fit_clips: usize,
    pub test_clips: usize,
    pub audio: ProbeResult,
    pub visual: ProbeResult,
}

/// The checkpoint file of `which` in a run folder, and the epoch it holds.
fn weights_file(run: &Path, which: Which) -> Result<(PathBuf, usize)> {
    match which {
        Which::Best => {
            let summary: RunSummary = serde_json::from_slice(
                &std::fs::read(run.join("summary.json"))
                    .with_context(|| format!("{}: no summary.json; probe a finished run, or pass --checkpoint last for an unfinished one", run.display()))?,
            )?;
            let file = run.join("model-best.bin");
            anyhow::ensure!(file.is_file(), "{}: no model-best.bin (a run made before it was kept): pass --checkpoint last", run.display());
            Ok((file.with_extension(""), summary.best_epoch))
        }
        Which::Last => {
            let progress: serde_json::Value =
                serde_json::from_slice(&std::fs::read(run.join("checkpoint/progress.json")).with_context(|| format!("{}: no checkpoint", run.display()))?)?;
            let epoch = progress["next_epoch"].as_u64().context("progress.json without next_epoch")?.checked_sub(1).context("no epoch finished")? as usize;
            Ok((run.join("checkpoint").join(format!("model-e{epoch:04}")), epoch))
        }
    }
}

/// Fits a linear classifier on row-major features `x` (`[n, d]`) and returns it.
fn fit_linear<B: AutodiffBackend>(x: &[f32], y: &[i64], d: usize, classes: usize, cfg: &ProbeConfig, device: &B::Device) -> Linear<B::InnerBackend> {
    B::seed(device, cfg.seed);
    let mut model: Linear<B> = crate::model::linear(d, classes, device);
    let mut optim = crate::optim::adam(0.0).init::<B, Linear<B>>();
    let ce = CrossEntropyLossConfig::new().init(device);
    let mut rng = Rng::new(cfg.seed);
    let mut order: Vec<usize> = (0..y.len()).collect();
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(256) {
            let xs: Vec<f32> = chunk.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect();
            let ys: Vec<i64> = chunk.iter().map(|&i| y[i]).collect();
            let xt = Tensor::<B, 2>::from_data(TensorData::new(xs, [chunk.len(), d]), device);
            let yt = Tensor::<B, 1, Int>::from_data(TensorData::new(ys, [chunk.len()]), device);
            let loss = ce.forward(model.forward(xt), yt);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.lr, model, grads);
        }
    }
    model.valid()
}

fn score<B: Backend>(l: &Linear<B>, x: &[f32], y: &[i64], d: usize, classes: usize, device: &B::Device) -> HeadMetrics {
    let logits = l.forward(Tensor::<B, 2>::from_data(TensorData::new(x.to_vec(), [y.len(), d]), device));
    evaluate(&logits_vec(logits), y, classes)
}

/// Probes the run folder `cfg.run`; writes and returns its `probe.json`.
pub fn probe<B: AutodiffBackend>(cfg: &ProbeConfig, device: &B::Device) -> Result<ProbeReport> {
    let run = &cfg.run;
    let config_path = run.join("config.json");
    let train_cfg: TrainConfig =
        serde_json::from_slice(&std::fs::read(&config_path).with_context(|| format!("{}: not a run folder (no config.json)", run.display()))?)
            .with_context(|| format!("{} is not a classifier run's config", config_path.display()))?;
    let (file, epoch) = weights_file(run, cfg.checkpoint)?;
    let train_set = ShardSet::open(&train_cfg.data, Split::Train)?;
    let test_set = ShardSet::open(&train_cfg.data, Split::Test)?;
    let classes = train_set.meta.classes.len();
    let model = AvClassifier::<B::InnerBackend>::with_arch(train_cfg.model, train_cfg.arch, train_cfg.frames, train_cfg.fusion, classes, device)
        .load_file(&file, &BinFileRecorder::<FullPrecisionSettings>::new(), device)
        .with_context(|| format!("loading {}", file.display()))?;
    let fit_rows = if train_cfg.select_on_test || train_cfg.val_fraction <= 0.0 { Subset::All } else { Subset::Fit { val_fraction: train_cfg.val_fraction } };
    let fit = features_of(&model, &train_set, &loader_config(&train_cfg, &train_set, false, fit_rows), device)?;
    let test = features_of(&model, &test_set, &loader_config(&train_cfg, &test_set, false, Subset::All), device)?;
    let d = fit.dim;
    let probe_one = |xf: &[f32], xt: &[f32], joint: &[f32]| {
        let l = fit_linear::<B>(xf, &fit.labels, d, classes, cfg, device);
        ProbeResult {
            fit: score(&l, xf, &fit.labels, d, classes, device),
            test: score(&l, xt, &test.labels, d, classes, device),
            joint_head_test: evaluate(joint, &test.labels, classes),
        }
    };
    let report = ProbeReport {
        config: cfg.clone(),
        epoch,
        fit_clips: fit.labels.len(),
        test_clips: test.labels.len(),
        audio: probe_one(&fit.audio, &test.audio, &test.audio_logits),
        visual: probe_one(&fit.visual, &test.visual, &test.visual_logits),
    };
    datasets::durable::write_atomic(&run.join("probe.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}
