//! Audio-visual event localization on AVE shards (`trainer localize`): AVGA or PSP on this
//! toolkit's own per-second encoders, with and without OGM-GE.
//!
//! - [`model`]: per-segment encoders and the head (`--head avga|psp`);
//! - [`avga`]: AVGA's head: BiLSTMs, the classifier with uni-modal shares;
//! - [`psp`]: PSP's propagation module, classifier with exact shares, AVPS loss;
//! - [`shared`]: what both heads use: the preset's sizes, segment logits, AVGA's attention;
//! - [`data`]: seconds to spectrogram columns and frames, segment batches;
//! - [`train`]: the loop, segment-level accuracy, run logs.

pub mod avga;
pub mod data;
pub mod model;
pub mod psp;
pub mod shared;
pub mod train;

pub use train::{localize, LocalizeConfig, LocalizeSummary};
