//! One clip to one shard row: audio (the separate audio file when the dataset has one) through the
//! preset, frames sampled and JPEG-encoded, provenance. Any problem becomes a reason string that
//! the index records; nothing here panics on bad media.

use std::path::Path;

use datasets::catalog::ClipEntry;
use datasets::clip_id::join_under;
use datasets::shard::{file_sha256, ClipRecord, Frame, Provenance};
use datasets::Preset;

use crate::decode::{decode_audio_prefix, decode_audio_video, sample_frames, FramePlan};
use crate::spectrogram::compute;

/// Policies of clip processing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClipOptions {
    /// Accept clips whose streams had undecodable packets (default: such a clip fails).
    pub tolerate_decode_errors: bool,
}

/// Processes one clip; `Err` is the reason it failed. `threads`: how many the video decoder may
/// use (the result does not depend on it).
pub fn process_clip(root: &Path, clip: &ClipEntry, preset: &Preset, shape: [usize; 2], opts: ClipOptions, threads: usize) -> Result<ClipRecord, String> {
    let video_path = join_under(root, &clip.video).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&video_path).map_err(|e| format!("{}: {e}", clip.video.display()))?.len();
    if size == 0 {
        return Err(format!("{}: empty file (0 bytes)", clip.video.display()));
    }
    let audio_rel = clip.audio.as_deref().unwrap_or(&clip.video);
    let audio_path = join_under(root, audio_rel).map_err(|e| e.to_string())?;
    let in_file = |what: &str, p: &Path, e: &dyn std::fmt::Display| format!("{what} {}: {e}", p.display());

    let fp = &preset.frames;
    let max_frames = fp.exact_frames.or(fp.max_frames).unwrap_or(u32::MAX) as usize;
    let plan = FramePlan { fps: fp.fps, phase: fp.phase, max_frames, skip_unneeded: true, threads };
    // A preset that cuts to a fixed length needs only that much audio decoded. Audio and frames
    // of one file come from one pass over it; a separate audio file is read on its own.
    let (rate, max_samples) = (preset.audio.sample_rate, preset.audio.fixed_samples());
    let (audio, video) = if clip.audio.is_some() {
        (decode_audio_prefix(&audio_path, rate, max_samples), None)
    } else {
        match decode_audio_video(&video_path, rate, max_samples, &plan, fp.short_side) {
            Ok((audio, video)) => (Ok(audio), Some(video)),
            Err(e) => (Err(e), None),
        }
    };
    let audio = audio.map_err(|e| in_file("audio of", audio_rel, &e))?;
    if audio.packet_errors > 0 && !opts.tolerate_decode_errors {
        return Err(in_file("audio of", audio_rel, &format!("{} undecodable packets (corrupt or truncated data)", audio.packet_errors)));
    }
    let (spec, shaping) = compute(&preset.audio, audio.samples, audio.rate);
    if spec.shape != shape {
        return Err(format!("audio of {}: spectrogram {:?}, the preset needs {:?}", audio_rel.display(), spec.shape, shape));
    }
    let video = video.unwrap_or_else(|| sample_frames(&video_path, &plan, fp.short_side));
    let (info, mut sampled) = video.map_err(|e| in_file("video", &clip.video, &e))?;
    if info.packet_errors > 0 && !opts.tolerate_decode_errors {
        return Err(in_file("video", &clip.video, &format!("{} undecodable packets (corrupt or truncated data)", info.packet_errors)));
    }
    if let Some(exact) = fp.exact_frames {
        // A video shorter than the preset's segments repeats its last frame (AVE: 10 per clip).
        while sampled.len() < exact as usize {
            let last = sampled.last().expect("at least one frame").clone();
            sampled.push(last);
        }
    }
    let mut frames = Vec::with_capacity(sampled.len());
    for (i, f) in sampled.iter().enumerate() {
        let jpeg = crate::jpeg::encode(&f.image, fp.jpeg_quality).map_err(|e| in_file("video", &clip.video, &format!("JPEG encoding: {e}")))?;
        frames.push(Frame { jpeg, path: format!("{}/frame_{i:02}.jpg", clip.clip_id) });
    }
    Ok(ClipRecord {
        clip_id: clip.clip_id.clone(),
        split: clip.split,
        label: clip.label,
        label_name: clip.label_name.clone(),
        audio: spec.values,
        frame_times: sampled.iter().map(|f| f.time_s as f32).collect(),
        frames,
        segment_labels: clip.segment_labels.clone(),
        provenance: Provenance {
            source_path: clip.video.to_string_lossy().into_owned(),
            audio_source_path: clip.audio.as_ref().map(|p| p.to_string_lossy().into_owned()),
            source_bytes: size,
            source_sha256: file_sha256(&video_path).map_err(|e| e.to_string())?,
            duration_s: info.duration_s.unwrap_or(audio.duration_s),
            orig_fps: info.fps,
            orig_width: Some(info.width),
            orig_height: Some(info.height),
            orig_sample_rate: Some(audio.source_rate),
            orig_channels: Some(audio.source_channels),
            audio_tiled: shaping.tiled,
        },
    })
}
