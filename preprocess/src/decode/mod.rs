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

/// Opens a media file for reading. FFmpeg's stream probing at open reads packets and decodes
/// some (seven frames of an H.264 stream, to guess its reordering depth; all of a WAV file) to
/// learn what a container may not say. MP4/MOV with their sample tables and WAV say it all in
/// their headers (durations, start times, frame rates, the reordering depth from the composition
/// offsets, sizes, rates, channels: `quick_probe_keeps_every_stream_fact` checks each shared
/// file), so they are opened with a minimal probe; anything else, or such a file whose header
/// lacks any of it, gets the full probe. Frame-rate probing is never done: `sample_frames`
/// estimates a rate from packets when the container states none.
pub(crate) fn open_input(path: &std::path::Path) -> Result<ffmpeg::format::context::Input, DecodeError> {
    init();
    if let Ok(ictx) = open_probed(path, Probe::Quick) {
        if header_is_complete(&ictx) {
            return Ok(ictx);
        }
    }
    open_probed(path, Probe::Full).map_err(DecodeError::Open)
}

/// How much FFmpeg reads at open to learn the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// One packet.
    Quick,
    /// FFmpeg's default (up to 5 MB / 5 s), without frame-rate probing.
    Full,
}

fn open_probed(path: &std::path::Path, probe: Probe) -> Result<ffmpeg::format::context::Input, ffmpeg::Error> {
    let mut options = ffmpeg::Dictionary::new();
    options.set("fpsprobesize", "0");
    if probe == Probe::Quick {
        options.set("probesize", "32");
    }
    ffmpeg::format::input_with_dictionary(&path, options)
}

/// Containers whose headers state every stream fact the decoders and the sampler use.
const HEADER_COMPLETE_FORMATS: &[&str] = &["mov,mp4,m4a,3gp,3g2,mj2", "wav"];

/// Whether a quickly probed file's header said all there is to know: a container of
/// [`HEADER_COMPLETE_FORMATS`], a duration, at most one audio and one video stream (FFmpeg
/// chooses the best of several by how many frames its probe decoded: the full probe keeps that
/// choice the `ffmpeg` CLI's), and for each audio and video stream its length (sample tables
/// present: not a fragmented MP4 whose index comes later), its size or its rate and channels.
fn header_is_complete(ictx: &ffmpeg::format::context::Input) -> bool {
    use ffmpeg::media::Type;
    let count = |t: Type| ictx.streams().filter(|s| s.parameters().medium() == t).count();
    HEADER_COMPLETE_FORMATS.contains(&ictx.format().name())
        && ictx.duration() > 0
        && count(Type::Audio) <= 1
        && count(Type::Video) <= 1
        && ictx.streams().all(|s| {
            let known_length = s.frames() > 0 || s.duration() > 0;
            let decoder = || ffmpeg::codec::context::Context::from_parameters(s.parameters()).map(|c| c.decoder());
            match s.parameters().medium() {
                Type::Video => known_length && decoder().and_then(|d| d.video()).is_ok_and(|v| v.width() > 0 && v.height() > 0),
                Type::Audio => known_length && decoder().and_then(|d| d.audio()).is_ok_and(|a| a.rate() > 0 && a.channels() > 0),
                _ => true,
            }
        })
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
    feed(&mut ictx, Some(&mut audio), Some(&mut video))?;
    Ok((audio.finish()?, video.and_then(VideoTrack::finish)))
}

/// Reads `ictx`'s packets once and gives each track its stream's, until no track wants more.
/// An error of the audio track ends the reading and is returned; one of the video track takes
/// the track's place (and the audio goes on).
fn feed(
    ictx: &mut ffmpeg::format::context::Input,
    mut audio: Option<&mut AudioTrack>,
    mut video: Option<&mut Result<VideoTrack, DecodeError>>,
) -> Result<(), DecodeError> {
    let video_wants = |v: &Option<&mut Result<VideoTrack, DecodeError>>| v.as_ref().is_some_and(|v| v.as_ref().is_ok_and(VideoTrack::wants));
    for (s, packet) in ictx.packets() {
        if let Some(a) = audio.as_deref_mut().filter(|a| a.index() == s.index() && a.wants()) {
            a.push(&packet)?;
        } else if let Some(slot) = video.as_deref_mut() {
            if let Ok(track) = slot {
                if track.index() == s.index() && track.wants() {
                    if let Err(e) = track.push(packet) {
                        *slot = Err(e);
                    }
                }
            }
        }
        if !audio.as_ref().is_some_and(|a| a.wants()) && !video_wants(&video) {
            break;
        }
    }
    Ok(())
}

/// Initialises FFmpeg once and keeps its own logging quiet (failures are reported by us, per file).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffmpeg::format::context::Input;

    /// Every media file of `tests/media` (the repository's copy of the odd-media matrix), sorted.
    pub(super) fn shared_media() -> Vec<std::path::PathBuf> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/media");
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_none_or(|e| e != "tsv")).collect();
        names.sort();
        names
    }

    /// The shared files a quick probe is trusted with.
    fn quick_files() -> Vec<(std::path::PathBuf, Input, Input)> {
        init();
        let files: Vec<_> = shared_media()
            .into_iter()
            .filter_map(|p| {
                let quick = open_probed(&p, Probe::Quick).ok().filter(header_is_complete)?;
                let full = open_probed(&p, Probe::Full).unwrap();
                Some((p, quick, full))
            })
            .collect();
        // Every MP4/MOV and WAV of the shared media but nasa_13013.mp4 (two audio and two video
        // streams): 11 files; none of the FLV, AVI, MKV, WebM.
        let names: Vec<String> = files.iter().map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 11, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".mp4") || n.ends_with(".mov") || n.ends_with(".wav")), "{names:?}");
        files
    }

    fn facts(ictx: &Input) -> Vec<String> {
        let mut out = vec![format!("{} duration {}", ictx.format().name(), ictx.duration())];
        for s in ictx.streams() {
            let c = ffmpeg::codec::context::Context::from_parameters(s.parameters()).unwrap();
            let mut f = format!(
                "#{} {:?} {:?} tb {} start {} duration {} frames {} avg rate {}",
                s.index(),
                s.parameters().medium(),
                c.id(),
                s.time_base(),
                s.start_time(),
                s.duration(),
                s.frames(),
                s.avg_frame_rate()
            );
            let decoder = || ffmpeg::codec::context::Context::from_parameters(s.parameters()).unwrap().decoder();
            if let Ok(v) = decoder().video() {
                f += &format!(" {}x{} reorders {}", v.width(), v.height(), v.has_b_frames());
            } else if let Ok(a) = decoder().audio() {
                f += &format!(" {} Hz {} channels", a.rate(), a.channels());
            }
            out.push(f);
        }
        out
    }

    /// What the sampler and the decoders read from a quickly probed header is what the full
    /// probe finds: durations, start times, frame rates, reordering, sizes, rates, channels.
    #[test]
    fn quick_probe_keeps_every_stream_fact() {
        for (path, quick, full) in quick_files() {
            assert_eq!(facts(&quick), facts(&full), "{}", path.display());
        }
    }

    /// And the same samples and frames come out (H.264 with B-frames included: the reordering
    /// depth comes from the MP4's composition offsets, not from decoding at open).
    #[test]
    fn quick_probe_decodes_the_same_samples_and_frames() {
        let plan = FramePlan { fps: 1.0, phase: 0.5, max_frames: 10, skip_unneeded: true, threads: 1 };
        let decode = |mut ictx: Input| {
            let mut audio = AudioTrack::open(&ictx, Some(16000), None).ok();
            let mut video = VideoTrack::open(&ictx, &plan, 64).ok().map(Ok);
            feed(&mut ictx, audio.as_mut(), video.as_mut()).unwrap();
            (
                audio.map(|a| a.finish().map(|a| (a.samples, a.source_rate, a.source_channels))),
                video.map(|v| v.and_then(VideoTrack::finish).map(|(i, f)| (i, f.into_iter().map(|f| (f.time_s, f.image)).collect::<Vec<_>>()))),
            )
        };
        // The audio as decoded: samples, source rate, source channels.
        type Audio = Option<Result<(Vec<f32>, u32, u32), DecodeError>>;
        for (path, quick, full) in quick_files() {
            let (qa, qv) = decode(quick);
            let (fa, fv) = decode(full);
            let summary = |a: &Audio| a.as_ref().map(|r| r.as_ref().map(|(s, r, c)| (s.len(), *r, *c)).map_err(|e| e.to_string()));
            assert_eq!(summary(&qa), summary(&fa), "{}: audio", path.display());
            assert!(qa.as_ref().map(|r| r.as_ref().ok()) == fa.as_ref().map(|r| r.as_ref().ok()), "{}: audio samples differ", path.display());
            assert_eq!(qv.is_some(), fv.is_some(), "{}: video", path.display());
            if let (Some(q), Some(f)) = (qv, fv) {
                let (q, f) = (q.map_err(|e| e.to_string()), f.map_err(|e| e.to_string()));
                assert_eq!(q.as_ref().map(|(i, fr)| (i.clone(), fr.len())), f.as_ref().map(|(i, fr)| (i.clone(), fr.len())), "{}: video", path.display());
                assert!(q == f, "{}: frames differ", path.display());
            }
        }
    }
}
