//! The one list of methods: each line names a method (its `--balance` name is the variant's,
//! kebab-cased), says what it is (the CLI's help), what it needs of the run and how it is built
//! from the run's [`MethodParams`]. [`MethodSettings`] gathers the methods' own settings structs,
//! each defined once in its method's file with its flags' defaults.
//!
//! Adding a method: its file in `methods/`, its `pub mod` in `methods/mod.rs`, one line below,
//! and, if it has settings, one field of [`MethodSettings`].

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::{adaptive_alpha, ge_only, none, ogm, ogm_ge};
use super::{agm, agm_bb, gblend, mla, mmpareto, modality_drop, opm, pmr, umt};
use super::{Method, MethodParams, Needs};

macro_rules! registry {
    ($( $(#[doc = $doc:literal])* $variant:ident => |$p:ident| $build:expr, needs $needs:expr; )*) => {
        /// The balancing method of a run (`--balance`, the `balance` field of `config.json`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
        #[serde(rename_all = "kebab-case")]
        pub enum Balance {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Balance {
            /// Every method, in the registry's order.
            pub const ALL: &'static [Balance] = &[$(Balance::$variant),*];

            /// What the method needs of a run.
            pub fn needs(self) -> Needs {
                match self {
                    $(Balance::$variant => $needs,)*
                }
            }
        }

        /// The method `kind` with `params`.
        pub fn build<B: AutodiffBackend>(kind: Balance, params: &MethodParams) -> Box<dyn Method<B>> {
            match kind {
                $(Balance::$variant => {
                    let $p = params;
                    Box::new($build)
                })*
            }
        }
    };
}

registry! {
    /// Joint training, cross-entropy on the fused logits.
    None => |_p| none::Joint, needs Needs::GRADIENTS_ONLY;
    /// OGM: the dominant encoder's conv gradients scaled by `1 - tanh(alpha * ratio)`.
    Ogm => |_p| ogm::Ogm, needs Needs::GRADIENTS_ONLY;
    /// OGM-GE: OGM plus Gaussian noise of each conv gradient's own std (the paper's method).
    OgmGe => |_p| ogm_ge::OgmGe, needs Needs::GRADIENTS_ONLY;
    /// Noise without modulation: the ablation the paper's discussion asks for.
    GeOnly => |_p| ge_only::GeOnly, needs Needs::GRADIENTS_ONLY;
    /// OGM-GE with alpha chosen every step from the step's own score ratio (see `adaptive_alpha.rs`).
    OgmGeAdaptive => |_p| adaptive_alpha::AdaptiveAlpha, needs Needs::GRADIENTS_ONLY;
    /// Modality-Drop (audio): the audio features dropped with probability `--modality-drop-p` per batch.
    ModalityDropAudio => |p| modality_drop::ModalityDrop::new(modality_drop::Target::Audio, p.settings.modality_drop.modality_drop_p, p.seed), needs Needs::NOTHING;
    /// Modality-Drop (visual).
    ModalityDropVisual => |p| modality_drop::ModalityDrop::new(modality_drop::Target::Visual, p.settings.modality_drop.modality_drop_p, p.seed), needs Needs::NOTHING;
    /// Gradient-Blending, weights estimated once before training (`--gblend-super-epoch` epochs per head).
    GblendOffline => |p| gblend::GradientBlending::new(gblend::Mode::Offline, p.settings.gblend), needs gblend::NEEDS;
    /// Gradient-Blending, weights re-estimated every `--gblend-super-epoch` epochs.
    GblendOnline => |p| gblend::GradientBlending::new(gblend::Mode::Online, p.settings.gblend), needs gblend::NEEDS;
    /// OPM: the dominant modality's features dropped per sample, more often the more it leads.
    Opm => |p| opm::Opm::new(p.settings.opm, p.seed), needs Needs::NOTHING;
    /// MMPareto: per encoder, the multimodal and uni-modal gradients combined without conflict.
    Mmpareto => |p| mmpareto::MmPareto::new(mmpareto::Mode::Official, p.settings.mmpareto.mmpareto_gamma), needs mmpareto::NEEDS;
    /// MMPareto as BalanceBenchmark runs it: uniform multitask loss, encoder gradients x 2 gamma.
    MmparetoBb => |p| mmpareto::MmPareto::new(mmpareto::Mode::BalanceBenchmark, p.settings.mmpareto.mmpareto_gamma), needs mmpareto::NEEDS;
    /// AGM: each encoder's gradient scaled to pull the modalities' Shapley responses to balance.
    Agm => |p| agm::Agm::new(p.settings.agm.agm_alpha), needs agm::NEEDS;
    /// AGM as BalanceBenchmark runs it: flipped ratio, no empty-coalition term, encoder weights scaled after backward, clip at 5.
    AgmBb => |p| agm_bb::AgmBb::new(p.settings.agm.agm_alpha), needs agm::NEEDS;
    /// PMR: prototype cross-entropy for the slower modality.
    Pmr => |p| pmr::Pmr::new(p.settings.pmr.pmr_alpha, p.settings.pmr.pmr_momentum), needs Needs::NOTHING;
    /// UMT: feature distillation from uni-modal teachers trained first.
    Umt => |p| umt::Umt::<B>::new(p.settings.umt, p.teachers.clone()), needs Needs::NOTHING;
    /// MLA: alternating uni-modal steps through a shared head (needs `--fusion shared`).
    Mla => |p| mla::Mla::new(p.settings.mla.mla_projector), needs mla::NEEDS;
}

/// Every method's own settings, flattened into the CLI (`--opm-q-base`, ...) and into
/// `config.json` (`opm_q_base`, ...); a method ignores the others'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct MethodSettings {
    #[command(flatten)]
    #[serde(flatten)]
    pub modality_drop: modality_drop::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub gblend: gblend::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub opm: opm::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub mmpareto: mmpareto::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub agm: agm::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub pmr: pmr::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub umt: umt::Settings,
    #[command(flatten)]
    #[serde(flatten)]
    pub mla: mla::Settings,
}

/// Config keys renamed when the methods' settings were named after their method: a config file
/// (or an older run's `config.json`) may still use the old name.
pub const RENAMED_KEYS: &[(&str, &str)] = &[("drop_p", "modality_drop_p"), ("super_epoch", "gblend_super_epoch"), ("gamma", "mmpareto_gamma")];
