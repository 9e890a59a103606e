//! The optimisers, configured with PyTorch's semantics and defaults (the reference code and AVGA
//! are PyTorch): SGD with classical momentum (no dampening, no Nesterov) and L2 weight decay added
//! to the gradient; Adam with betas 0.9 / 0.999 and epsilon 1e-8 (Burn's default epsilon is
//! 1e-5, which damps every update whose gradient is small) and L2 weight decay; AdamW, the same
//! moments with decoupled weight decay (`p *= 1 - lr * wd` before the step). SGD and Adam are
//! checked within a whole training step against PyTorch in `tests/pytorch_steps.rs`, all three on
//! their own in `tests/optimizers.rs`.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, SgdConfig};
use serde::{Deserialize, Serialize};

/// Which optimiser a run uses (`--optimizer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// `torch.optim.SGD` with `--momentum` and `--weight-decay` (the OGM-GE reference).
    #[default]
    Sgd,
    /// `torch.optim.Adam` (L2 `--weight-decay`; AVGA's optimiser).
    Adam,
    /// `torch.optim.AdamW` (decoupled `--weight-decay`).
    Adamw,
}

impl OptimizerKind {
    /// The CLI's name: `sgd`, `adam`, `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "sgd",
            Self::Adam => "adam",
            Self::Adamw => "adamw",
        }
    }

    /// What a default run name says of it: nothing for the reference's SGD, else `-adam`, `-adamw`.
    pub fn name_suffix(self) -> &'static str {
        match self {
            Self::Sgd => "",
            Self::Adam => "-adam",
            Self::Adamw => "-adamw",
        }
    }
}

/// `torch.optim.SGD(params, lr, momentum, weight_decay)`.
pub fn sgd(momentum: f64, weight_decay: f64) -> SgdConfig {
    SgdConfig::new()
        .with_momentum((momentum > 0.0).then_some(MomentumConfig { momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay((weight_decay > 0.0).then_some(WeightDecayConfig { penalty: weight_decay as f32 }))
}

/// `torch.optim.AdamW(params, lr, weight_decay=weight_decay)`: betas 0.9 / 0.999, eps 1e-8.
/// (PyTorch's default decay is 1e-2; here the caller's `--weight-decay` always applies.)
pub fn adamw(weight_decay: f64) -> AdamWConfig {
    AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(weight_decay as f32)
}

/// `torch.optim.Adam(params, lr, weight_decay=weight_decay)`: betas 0.9 / 0.999, eps 1e-8.
pub fn adam(weight_decay: f64) -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay((weight_decay > 0.0).then_some(WeightDecayConfig { penalty: weight_decay as f32 }))
}
