//! FFmpeg decoding through ffmpeg-next: the only module that touches FFmpeg's decoders.

mod audio;
mod gate;
mod video;

pub use audio::{decode_audio, decode_audio_prefix, DecodedAudio};
pub use video::{sample_frames, FramePlan, SampledFrame, VideoInfo};

use audio::AudioTrack;
use video::VideoTrack;

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

/// What [`decode_audio_video`] returns: the audio, and the video's frames or why they failed.
pub type AudioVideo = (DecodedAudio, Result<(VideoInfo, Vec<SampledFrame>), DecodeError>);

/// The audio (as [`decode_audio_prefix`]) and the frames (as [`sample_frames`]) of one file, from
/// one open and one pass over its packets: the demuxer reads the file once, and FFmpeg's stream
/// probing at open (which decodes the first frames: seven of an H.264 stream, to guess its
/// reordering depth) runs once. The outer error is the file's or the audio's (checked first, as
/// a clip without usable audio needs no frames); the inner one the video's.
pub fn decode_audio_video(
    path: &std::path::Path,
    target_rate: Option<u32>,
    max_samples: Option<usize>,
    plan: &FramePlan,
    short_side: u32,
) -> Result<AudioVideo, DecodeError> {
    let mut ictx = open_input(path)?;
    let mut audio = AudioTrack::open(&ictx, target_rate, max_samples)?;
    let mut video = VideoTrack::open(&ictx, plan, short_side);
    let (a, v) = (audio.index(), video.as_ref().map_or(usize::MAX, VideoTrack::index));
    let (mut audio_wants, mut video_wants) = (audio.wants(), video.as_ref().is_ok_and(VideoTrack::wants));
    for (s, packet) in ictx.packets() {
        if s.index() == a && audio_wants {
            audio.push(&packet)?;
            audio_wants = audio.wants();
        } else if s.index() == v && video_wants {
            if let Ok(track) = video.as_mut() {
                if let Err(e) = track.push(packet) {
                    video = Err(e);
                }
            }
            video_wants = video.as_ref().is_ok_and(VideoTrack::wants);
        }
        if !audio_wants && !video_wants {
            break;
        }
    }
    Ok((audio.finish()?, video.and_then(VideoTrack::finish)))
}

/// Initialises FFmpeg once and keeps its own logging quiet (failures are reported by us, per file).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}
