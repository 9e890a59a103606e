//! The fusion heads' names: what `--fusion` chooses and what a method or an architecture may
//! require. Below both `model.rs` (which builds the heads) and `arch.rs` (TBN's binding fusion),
//! so neither imports the other for it.

use serde::{Deserialize, Serialize};

/// How audio and visual features are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FusionKind {
    Sum,
    Concat,
    Film,
    Gated,
    /// One linear head shared by both modalities (MLA's): each modality's logits through it, the
    /// fused logits their per-sample entropy-weighted sum.
    Shared,
    /// TBN's mid-level fusion: `fc_out(relu(fc_x([a; v])))`, `fc_x` of width d.
    Binding,
}
