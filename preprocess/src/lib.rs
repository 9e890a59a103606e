//! Raw media to shards.
//!
//! - [`spectrogram`]: the audio presets (pure Rust, rustfft), matching librosa / scipy / torchaudio;
//! - `decode`: FFmpeg (ffmpeg-next) audio and video decoding;
//! - `frames`: frame sampling, resizing and JPEG;
//! - `clip`, `pipeline`: one clip to one shard row; the parallel, resumable run;
//! - `synthetic`: the generated audio-visual corpus (real encoded video files).

pub mod decode;
pub mod spectrogram;
