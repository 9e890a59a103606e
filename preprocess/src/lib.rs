//! Raw media to shards.
//!
//! - [`spectrogram`]: the audio presets (pure Rust, rustfft), matching librosa / scipy / torchaudio;
//! - [`decode`]: FFmpeg (ffmpeg-next) audio and video decoding;
//! - [`jpeg`]: frame JPEGs (libjpeg-turbo);
//! - [`clip`]: one clip to one shard row; [`pipeline`]: the parallel, resumable run;
//! - [`synthetic`]: the generated audio-visual corpus (real encoded video files).

pub mod clip;
pub mod decode;
pub mod jpeg;
pub mod pipeline;
pub mod spectrogram;
pub mod synthetic;
