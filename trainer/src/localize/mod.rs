//! Audio-visual event localization on AVE shards (`trainer localize`): an AVGA-style model on
//! this toolkit's own per-second encoders, with and without OGM-GE.
//!
//! - [`model`]: per-segment encoders, audio-guided attention, BiLSTMs, the 29-way head with
//!   uni-modal shares;
//! - [`data`]: seconds to spectrogram columns and frames, segment batches;
//! - [`train`]: the loop, segment-level accuracy, run logs.

pub mod data;
pub mod model;
pub mod train;

pub use train::{localize, LocalizeConfig, LocalizeSummary};
