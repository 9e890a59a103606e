//! The classifier run's settings: `TrainConfig` (every flag of `trainer train`, saved as the
//! run's `config.json`, with the defaults of the OGM-GE paper's protocol) and what no run may
//! start with (`validate`).

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::methods::{Balance, MethodSettings};
use crate::model::{FusionKind, ModelPreset};
use crate::optim::OptimizerKind;

/// Everything that decides a run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// A dataset's shard folder, e.g. `out/cremad`.
    pub data: PathBuf,
    pub out: PathBuf,
    pub name: String,
    pub model: ModelPreset,
    /// The architecture: the reference's (`plain`), TSN-AV, TSM-AV or TBN (`arch.rs`).
    #[serde(default)]
    pub arch: Arch,
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
    /// SGD (the reference's), Adam or AdamW, with PyTorch's semantics.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Every method's own settings (`modality_drop_p`, `opm_q_base`, ...; see
    /// `methods/registry.rs`), flat in `config.json`.
    #[serde(flatten)]
    pub methods: MethodSettings,
    /// Drop each epoch's last training batch when it is short (BalanceBenchmark's loader does).
    #[serde(default)]
    pub drop_last: bool,
    /// The recipe the run's settings started from (`--recipe`), if any.
    #[serde(default)]
    pub recipe: Option<String>,
}

impl Default for TrainConfig {
    /// `train`'s defaults: the OGM-GE paper's protocol on CREMA-D (SGD 1e-3, momentum 0.9, weight
    /// decay 1e-4, StepLR 70/0.1, 100 epochs, batch 64, 3 frames, OGM-GE alpha 0.8 over epochs
    /// 0-50, the `paper` model), selected on a 10% hold-out of train, on `out/synthetic`.
    fn default() -> Self {
        Self {
            data: "out/synthetic".into(),
            out: "runs".into(),
            name: String::new(),
            model: ModelPreset::Paper,
            arch: Arch::Plain,
            fusion: FusionKind::Concat,
            balance: Balance::OgmGe,
            alpha: 0.8,
            modulation_start: 0,
            modulation_end: 50,
            epochs: 100,
            batch_size: 64,
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 1e-4,
            lr_step: 70,
            lr_gamma: 0.1,
            frames: 3,
            seed: 0,
            val_fraction: 0.1,
            select_on_test: false,
            shuffle_buffer: 1024,
            train_head: TrainHead::Fused,
            optimizer: OptimizerKind::Sgd,
            methods: MethodSettings::default(),
            drop_last: false,
            recipe: None,
        }
    }
}

impl TrainConfig {
    /// Settings no run can start with, refused before anything is written.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(anyhow::anyhow!("{what}"));
        if self.frames == 0 {
            return bad("--frames must be at least 1 (frames per clip, T)");
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1");
        }
        if self.epochs == 0 {
            return bad("--epochs must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("--val-fraction must be in [0, 1)");
        }
        let m = &self.methods;
        if !(0.0..1.0).contains(&m.modality_drop.modality_drop_p) {
            return bad("--modality-drop-p must be in [0, 1)");
        }
        if m.gblend.gblend_super_epoch < 2 {
            return bad("--gblend-super-epoch must be at least 2 (the estimate compares a head's first and last epoch)");
        }
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        if !(unit(m.opm.opm_q_base) && unit(m.opm.opm_p_exe) && m.opm.opm_lambda.is_finite() && m.opm.opm_lambda >= 0.0) {
            return bad("--opm-q-base and --opm-p-exe must be in [0, 1], --opm-lambda at least 0");
        }
        // BalanceBenchmark's Gradient-Blending estimate reads the selection split, whichever it is.
        let holdout = self.balance.needs_holdout() && m.gblend.gblend_estimate.needs_holdout();
        if holdout && (self.select_on_test || self.val_fraction <= 0.0) {
            return Err(anyhow::anyhow!(
                "--balance {} estimates its weights on the validation hold-out: set --val-fraction above 0, without --select-on-test",
                self.balance.name()
            ));
        }
        let needs = [
            (self.balance.needs_fusion(), format!("--balance {}", self.balance.name()), "see its file in trainer/src/methods/"),
            (self.arch.needs_fusion(), format!("--arch {}", self.arch.name()), "its per-segment fusion"),
        ];
        for (fusion, who, why) in needs {
            if let Some(fusion) = fusion.filter(|&f| f != self.fusion) {
                anyhow::bail!("{who} needs --fusion {} ({why})", clap::ValueEnum::to_possible_value(&fusion).expect("named").get_name());
            }
        }
        if self.arch.fuses_per_segment() && !self.balance.gradient_only() {
            return Err(anyhow::anyhow!(
                "--arch {} fuses each segment: --balance {} acts on clip features and is not available; the methods on logits and gradients are (none, ogm, ogm-ge, ge-only, ogm-ge-adaptive)",
                self.arch.name(),
                self.balance.name()
            ));
        }
        if !(0.0..1.0).contains(&m.pmr.pmr_momentum) {
            return bad("--pmr-momentum must be in [0, 1)");
        }
        if self.train_head != TrainHead::Fused && self.balance != Balance::None {
            return Err(anyhow::anyhow!("a uni-modal run (train head {:?}) has nothing to balance: use --balance none", self.train_head));
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name == "." || self.name == ".." {
            return Err(anyhow::anyhow!("run name {:?} must be a plain folder name", self.name));
        }
        Ok(())
    }
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
