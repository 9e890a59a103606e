//! `pmr`: Prototypical Modal Rebalance (Fan et al., CVPR 2023; methods.md section 6), as the
//! authors' code does it (`fanyunfeng-bit/Modal-Imbalance-PMR`, `main_Prototype_grad.py`):
//!
//! - before every epoch, class prototypes per modality: the mean pooled feature of each class
//!   over the first tenth of the epoch's training batches (at least one), the model in eval
//!   mode; from the second estimate on, `c <- (1 - mu) c + mu c_prev` (`--pmr-momentum`, the
//!   code's `momentum_coef`, 0.2);
//! - each step inside the modulation window: prototype logits `z_m = -||h_m - c_m[k]||_2`,
//!   `rho = sum_i softmax(z_a)[i, y_i] / sum_i softmax(z_v)[i, y_i]`, and the loss
//!   `CE(out) + beta CE(z_a) + lambda CE(z_v)` with `(beta, lambda) = (0, alpha)` when
//!   `rho > 1`, `(alpha, 0)` when `rho < 1`, `(0, 0)` at a tie: the prototype cross-entropy of
//!   the slower modality alone, with the constant weight `alpha` (`--pmr-alpha`, the code's
//!   default 1.0). Prototypes are constants; the term reaches only that modality's encoder.
//!
//! The paper's entropy regulariser is in no released code (methods.md): not implemented.
//! A class missing from the sample keeps its previous prototype (the code divides by zero); a
//! class never seen has a zero prototype.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::{LossInput, Method, SampledFeatures};
use crate::balance::{logits_vec, true_class_softmax_sum};

/// Per-class means of row-major `[n, dim]` features; a class without rows keeps `previous`'s
/// row (zeros without one).
pub fn class_means(features: &[f32], labels: &[i64], dim: usize, classes: usize, previous: Option<&[f32]>) -> Vec<f32> {
    let mut sums = vec![0.0f64; classes * dim];
    let mut counts = vec![0usize; classes];
    for (i, &y) in labels.iter().enumerate() {
        let y = y as usize;
        counts[y] += 1;
        for j in 0..dim {
            sums[y * dim + j] += f64::from(features[i * dim + j]);
        }
    }
    (0..classes * dim)
        .map(|k| {
            let c = counts[k / dim];
            if c > 0 {
                (sums[k] / c as f64) as f32
            } else {
                previous.map_or(0.0, |p| p[k])
            }
        })
        .collect()
}

/// `-||h_i - c_k||_2`, `[n, classes]`, for features `h` `[n, d]` and prototypes `c` `[classes, d]`.
pub fn prototype_logits<B: Backend>(h: Tensor<B, 2>, c: Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, _] = h.dims();
    let classes = c.dims()[0];
    let h2 = h.clone().square().sum_dim(1); // [n, 1]
    let c2 = c.clone().square().sum_dim(1).reshape([1, classes]);
    let d2 = h2.repeat_dim(1, classes) - h.matmul(c.transpose()) * 2.0 + c2.repeat_dim(0, n);
    d2.clamp_min(1e-12).sqrt().neg()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Prototypes {
    dim: usize,
    classes: usize,
    audio: Vec<f32>,
    visual: Vec<f32>,
    /// The epoch they were estimated before.
    epoch: usize,
}

/// PMR's settings (`--pmr-alpha`, `--pmr-momentum`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "pmr")]
#[serde(default)]
pub struct Settings {
    /// PMR's prototype-loss weight alpha (the authors' default 1.0; BalanceBenchmark 0.6).
    #[arg(long, default_value_t = 1.0)]
    pub pmr_alpha: f64,
    /// PMR's prototype momentum, in [0, 1) (the authors' default 0.2; BalanceBenchmark 0.5).
    #[arg(long, default_value_t = 0.2)]
    pub pmr_momentum: f64,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// PMR.
pub struct Pmr {
    alpha: f64,
    momentum: f64,
    protos: Option<Prototypes>,
    active: bool,
    /// This epoch: steps where audio / visual got the prototype loss.
    boosted: [usize; 2],
    steps: usize,
    ratio_sum: f64,
}

impl Pmr {
    pub fn new(alpha: f64, momentum: f64) -> Self {
        Self { alpha, momentum, protos: None, active: true, boosted: [0; 2], steps: 0, ratio_sum: 0.0 }
    }

    /// The prototypes in force (audio, visual), row-major `[classes, dim]`.
    pub fn prototypes(&self) -> Option<(&[f32], &[f32])> {
        self.protos.as_ref().map(|p| (p.audio.as_slice(), p.visual.as_slice()))
    }
}

impl<B: AutodiffBackend> Method<B> for Pmr {
    fn begin_epoch(&mut self, _epoch: usize, active: bool) {
        self.active = active;
        (self.boosted, self.steps, self.ratio_sum) = ([0; 2], 0, 0.0);
    }

    fn sample_before(&self, epoch: usize) -> bool {
        self.protos.as_ref().is_none_or(|p| p.epoch != epoch)
    }

    fn sampled(&mut self, epoch: usize, s: &SampledFeatures) {
        let prev = self.protos.take();
        let mean = |f: &[f32], p: Option<&Vec<f32>>| class_means(f, &s.labels, s.dim, s.classes, p.map(Vec::as_slice));
        let (mut audio, mut visual) = (mean(&s.audio, prev.as_ref().map(|p| &p.audio)), mean(&s.visual, prev.as_ref().map(|p| &p.visual)));
        if let Some(p) = &prev {
            let mu = self.momentum as f32;
            let ema = |now: &mut Vec<f32>, before: &[f32]| now.iter_mut().zip(before).for_each(|(x, &b)| *x = (1.0 - mu) * *x + mu * b);
            ema(&mut audio, &p.audio);
            ema(&mut visual, &p.visual);
        }
        self.protos = Some(Prototypes { dim: s.dim, classes: s.classes, audio, visual, epoch });
    }

    fn loss(&mut self, input: &LossInput<B>, ce: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 1>) -> Tensor<B, 1> {
        let base = ce(input.trained.clone());
        let (Some(p), Some((a, v)), true) = (&self.protos, &input.features, self.active) else { return base };
        let device = a.device();
        let proto = |c: &Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(c.clone(), [p.classes, p.dim]), &device);
        let (z_a, z_v) = (prototype_logits(a.clone(), proto(&p.audio)), prototype_logits(v.clone(), proto(&p.visual)));
        let sp = |z: &Tensor<B, 2>| true_class_softmax_sum(&logits_vec(z.clone().detach()), input.labels, p.classes);
        let rho = sp(&z_a) / sp(&z_v);
        self.steps += 1;
        self.ratio_sum += rho;
        if rho > 1.0 {
            self.boosted[1] += 1;
            base + ce(z_v) * self.alpha
        } else if rho < 1.0 {
            self.boosted[0] += 1;
            base + ce(z_a) * self.alpha
        } else {
            base
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.protos).expect("plain data")
    }

    fn restore(&mut self, state: &serde_json::Value) -> anyhow::Result<()> {
        self.protos = serde_json::from_value(state.clone())?;
        Ok(())
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "epoch": epoch, "steps": self.steps, "audio_boosted": self.boosted[0], "visual_boosted": self.boosted[1],
            "mean_prototype_ratio": self.ratio_sum / self.steps.max(1) as f64,
        }))
    }
}
