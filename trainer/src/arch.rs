//! The classifier's architectures (`--arch`), the paper's other audio-visual classifiers on this
//! toolkit's ResNet18 trunks (OGM-GE Table 4: TSN-AV, TSM-AV, TBN):
//!
//! - `plain`: the reference's model: the audio trunk on the whole spectrogram, the visual trunk
//!   on each frame, one average over T x H x W, the fusion head.
//! - `tsn` (Wang et al., ECCV 2016; TSN-AV as in EPIC-Fusion): K segments, K = the frames per
//!   clip: the spectrogram cut into K equal windows, each through the audio trunk on its own (a
//!   snippet per segment, as TSN's audio stream), each frame through the visual trunk; the
//!   segment consensus is the average. It averages the per-segment features before the fusion
//!   head: for the linear heads (sum, concat, shared) that is exactly TSN's average of
//!   per-segment scores (each modality's scores too), and every method sees clip features.
//! - `tsm` (Lin et al., ICCV 2019): TSN with the temporal shift inside the visual trunk: before
//!   the first convolution of every residual block ("blockres", the authors' default), 1/8 of
//!   the channels come from the next segment, 1/8 from the previous one, zeros at the ends
//!   (`ops/temporal_shift.py::TemporalShift.shift`, out of place).
//! - `tbn` (Kazakos et al., ICCV 2019, EPIC-Fusion): per segment, the audio window and the frame
//!   inside it are bound by TBN's mid-level fusion (`--fusion binding`: `relu(W [a_k; v_k] + b)`
//!   then the classifier), the scores averaged over the segments. Its uni-modal scores are the
//!   exact shares of `model::Fusion`'s binding head, averaged as the fused ones are. The fusion is
//!   per segment, so only methods acting on logits and gradients run on it.
//!
//! The audio windows are fixed (equal cuts); TBN's training-time jitter of each modality inside
//! its binding window is the loader's frame sampling alone (frames are drawn in their windows).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fusion_kind::FusionKind;

/// The classifier's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The reference's two trunks, one pool over T x H x W, the fusion head.
    #[default]
    Plain,
    /// TSN-AV: K audio snippets and K frames, average consensus.
    Tsn,
    /// TSM-AV: TSN with the temporal shift in the visual trunk.
    Tsm,
    /// TBN: per-segment binding fusion, average consensus of the scores.
    Tbn,
}

/// TSM's fold divisor: 1/8 of the channels shift each way.
pub const TSM_DIV: usize = 8;

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Tsn => "tsn",
            Self::Tsm => "tsm",
            Self::Tbn => "tbn",
        }
    }

    /// Whether the audio is cut into one window per segment.
    pub fn segmented(self) -> bool {
        self != Self::Plain
    }

    /// Whether the fusion runs per segment (and the scores are averaged).
    pub fn fuses_per_segment(self) -> bool {
        self == Self::Tbn
    }

    /// The fusion head the architecture is defined with, where it has one.
    pub fn needs_fusion(self) -> Option<FusionKind> {
        (self == Self::Tbn).then_some(FusionKind::Binding)
    }
}

/// TSM's shift of `[N * T, C, H, W]` (`T` segments per clip): channels `[0, C/8)` take the next
/// segment's values, `[C/8, 2C/8)` the previous one's, zeros where there is none; the rest stay.
pub fn temporal_shift<B: Backend>(x: Tensor<B, 4>, segments: usize, n_div: usize) -> Tensor<B, 4> {
    let [nt, c, h, w] = x.dims();
    let (n, t) = (nt / segments, segments);
    let fold = c / n_div;
    if fold == 0 {
        return x;
    }
    let x = x.reshape([n, t, c, h, w]);
    let device = x.device();
    let zeros = |k: usize| Tensor::<B, 5>::zeros([n, 1, k, h, w], &device);
    let (left, right) = if t == 1 {
        (zeros(fold), zeros(fold))
    } else {
        let left = x.clone().slice([0..n, 1..t, 0..fold, 0..h, 0..w]);
        let right = x.clone().slice([0..n, 0..t - 1, fold..2 * fold, 0..h, 0..w]);
        (Tensor::cat(vec![left, zeros(fold)], 1), Tensor::cat(vec![zeros(fold), right], 1))
    };
    let rest = x.slice([0..n, 0..t, 2 * fold..c, 0..h, 0..w]);
    Tensor::cat(vec![left, right, rest], 2).reshape([nt, c, h, w])
}

/// `[B, 1, F, W]` spectrograms cut into `k` equal windows along time, `[B * k, 1, F, W / k]`
/// (the last `W mod k` columns dropped), the windows of each clip together.
pub fn audio_windows<B: Backend>(audio: Tensor<B, 4>, k: usize) -> Tensor<B, 4> {
    let [b, c, f, w] = audio.dims();
    let win = w / k;
    assert!(win > 0, "{w} spectrogram columns cannot make {k} windows");
    audio.slice([0..b, 0..c, 0..f, 0..win * k]).reshape([b, c, f, k, win]).permute([0, 3, 1, 2, 4]).reshape([b * k, c, f, win])
}

/// The average of each clip's `k` consecutive rows: `[B * k, D] -> [B, D]`.
pub fn consensus<B: Backend>(x: Tensor<B, 2>, k: usize) -> Tensor<B, 2> {
    let [bk, d] = x.dims();
    x.reshape([bk / k, k, d]).mean_dim(1).reshape([bk / k, d])
}
