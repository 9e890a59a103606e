//! FFmpeg decoding through ffmpeg-next: the only module that touches FFmpeg's decoders.

mod audio;
mod gate;
mod video;

pub use audio::{decode_audio, decode_audio_prefix, DecodedAudio};
pub use video::{sample_frames, FramePlan, SampledFrame, VideoInfo};

use ffmpeg_next as ffmpeg;

/// Why a file could not be decoded; recorded in the index as the clip's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot open as media: {0}")]
    Open(ffmpeg::Error),
    #[error("no audio stream")]
    NoAudioStream,
    #[error("no video stream")]
    NoVideoStream,
    #[error("the audio stream decoded to no samples ({errors} undecodable packets)")]
    NoAudioSamples { errors: usize },
    #[error("no decodable video frame ({errors} undecodable packets)")]
    NoVideoFrames { errors: usize },
    #[error("absurd video dimensions {width}x{height}")]
    AbsurdDimensions { width: u32, height: u32 },
    #[error("{what}: {source}")]
    Ffmpeg { what: &'static str, source: ffmpeg::Error },
}

pub(crate) fn ff(what: &'static str) -> impl FnOnce(ffmpeg::Error) -> DecodeError {
    move |source| DecodeError::Ffmpeg { what, source }
}

/// Opens a media file for reading, without FFmpeg's frame-rate probing: that decodes up to 20
/// video frames at open (20 ms for a high-bitrate 720p phone clip) to estimate a rate neither the
/// audio nor the sampler needs (`sample_frames` estimates one from packets when the container
/// states none).
pub(crate) fn open_input(path: &std::path::Path) -> Result<ffmpeg::format::context::Input, DecodeError> {
    init();
    let mut options = ffmpeg::Dictionary::new();
    options.set("fpsprobesize", "0");
    ffmpeg::format::input_with_dictionary(&path, options).map_err(DecodeError::Open)
}

/// Initialises FFmpeg once and keeps its own logging quiet (failures are reported by us, per file).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}
