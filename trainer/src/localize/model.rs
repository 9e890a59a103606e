//! The event-localization model on this toolkit's own encoders: per-segment encoders shared
//! across the segments (the audio trunk on each second's slice of the spectrogram, the visual
//! trunk on each second's frame: the classifier's ResNet18 trunks), then a head: AVGA
//! (`avga.rs`) or PSP (`psp.rs`), each with per-segment fused logits and exact uni-modal shares.

use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::avga::AvgaHead;
use super::psp::PspHead;
pub use super::shared::{LocalizerSize, SegmentLogits};
use crate::model::{pooled, ModelPreset, ResNet};

/// The localizer's head after the encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LocalizerHead {
    /// AVGA (ECCV 2018): audio-guided attention, BiLSTMs, a linear classifier.
    #[default]
    Avga,
    /// PSP (CVPR 2021): AVGA's attention, BiLSTMs, positive sample propagation, AVPS loss.
    Psp,
}

#[derive(Module, Debug)]
pub struct AvLocalizer<B: Backend> {
    pub audio_net: ResNet<B>,
    pub visual_net: ResNet<B>,
    audio_pool: Option<AvgPool2d>,
    avga: Option<AvgaHead<B>>,
    psp: Option<PspHead<B>>,
}

impl<B: Backend> AvLocalizer<B> {
    /// The AVGA localizer.
    pub fn new(preset: ModelPreset, classes: usize, device: &B::Device) -> Self {
        Self::with_head(preset, LocalizerHead::Avga, super::psp::PSP_THRESHOLD, classes, device)
    }

    /// `threshold`: PSP's pruning threshold (unused by AVGA).
    pub fn with_head(preset: ModelPreset, head: LocalizerHead, threshold: f64, classes: usize, device: &B::Device) -> Self {
        let s = LocalizerSize::of(preset);
        let d = 8 * s.width;
        let regions = (s.image / 32).pow(2);
        let (audio_net, visual_net) = (ResNet::new(1, s.width, device), ResNet::new(3, s.width, device));
        let audio_pool = s.audio_pool.map(|k| AvgPool2dConfig::new(k).with_strides(k).init());
        let (avga, psp) = match head {
            LocalizerHead::Avga => (Some(AvgaHead::new(s, d, regions, classes, device)), None),
            LocalizerHead::Psp => (None, Some(PspHead::new(s, d, regions, classes, threshold, device))),
        };
        Self { audio_net, visual_net, audio_pool, avga, psp }
    }

    /// The model without PSP's dropout (for comparing backends step for step).
    pub fn without_dropout(mut self) -> Self {
        self.psp = self.psp.map(PspHead::without_dropout);
        self
    }

    pub fn head(&self) -> LocalizerHead {
        if self.psp.is_some() {
            LocalizerHead::Psp
        } else {
            LocalizerHead::Avga
        }
    }

    /// `audio`: `[B * S, 1, F, W]` (each segment's slice); `frames`: `[B * S, 3, H, W]`.
    pub fn forward(&self, audio: Tensor<B, 4>, frames: Tensor<B, 4>, segments: usize) -> SegmentLogits<B> {
        let audio = match &self.audio_pool {
            Some(p) => p.forward(audio),
            None => audio,
        };
        let a = pooled(self.audio_net.forward(audio));
        let [n, d] = a.dims();
        let v = self.visual_net.forward(frames);
        let [_, _, h, w] = v.dims();
        let regions = crate::layout::swapped(v.reshape([n, d, h * w]), 1, 2); // [N, R, d]
        match (&self.avga, &self.psp) {
            (Some(head), _) => head.forward(a, regions, segments),
            (None, Some(head)) => head.forward(a, regions, segments),
            (None, None) => unreachable!("a localizer has a head"),
        }
    }
}
