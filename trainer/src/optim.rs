//! The optimisers, configured with PyTorch's semantics and defaults (the reference code and AVGA
//! are PyTorch): SGD with classical momentum (no dampening, no Nesterov) and L2 weight decay added
//! to the gradient; Adam with betas 0.9 / 0.999 and epsilon 1e-8 (Burn's default epsilon is
//! 1e-5, which damps every update whose gradient is small) and L2 weight decay. Both are checked
//! step by step against PyTorch in `tests/pytorch_steps.rs`.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, SgdConfig};

/// `torch.optim.SGD(params, lr, momentum, weight_decay)`.
pub fn sgd(momentum: f64, weight_decay: f64) -> SgdConfig {
    SgdConfig::new()
        .with_momentum((momentum > 0.0).then_some(MomentumConfig { momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay((weight_decay > 0.0).then_some(WeightDecayConfig { penalty: weight_decay as f32 }))
}

/// `torch.optim.Adam(params, lr, weight_decay=weight_decay)`: betas 0.9 / 0.999, eps 1e-8.
pub fn adam(weight_decay: f64) -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay((weight_decay > 0.0).then_some(WeightDecayConfig { penalty: weight_decay as f32 }))
}
