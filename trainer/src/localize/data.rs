//! Segment batches for localization: each clip becomes S one-second segments, each with the
//! spectrogram slice of its second and the frame of its second, and its label.
//!
//! The spectrogram's time axis is mapped onto seconds from the preset that made it (recorded in
//! every shard): frame `j` of a transform is centred at `(j * hop + window / 2) / rate` seconds
//! (at `j * hop / rate` for a centred STFT), second `s` takes the fixed-width run of frames
//! starting at the first frame centred at or after `s`. For `psd-1004` (hop 159, window 512,
//! 16 kHz) that is 100 frames per second, second 5 starting at frame 502.

use std::ops::Range;

use anyhow::{bail, ensure, Result};
use datasets::preset::AudioTransform;
use datasets::rng::{fnv1a, Rng};
use datasets::schema::ShardMeta;
use datasets::AudioPreset;
use image::imageops;
use rayon::prelude::*;

use crate::data::{decode_jpeg, LoaderConfig, RawRow};
use crate::transform::{select_frames, transform};

/// Frames per second of the transform and the time of frame 0's centre, when the preset says.
fn frame_clock(preset: &AudioPreset) -> Option<(f64, f64)> {
    let rate = f64::from(preset.sample_rate?);
    Some(match &preset.transform {
        AudioTransform::LogStft { hop_length, center, n_fft, .. } => {
            let offset = if *center { 0.0 } else { *n_fft as f64 / 2.0 / rate };
            (rate / *hop_length as f64, offset)
        }
        AudioTransform::LogPsd { nperseg, noverlap, .. } => (rate / (nperseg - noverlap) as f64, *nperseg as f64 / 2.0 / rate),
        AudioTransform::KaldiFbank { frame_length_ms, frame_shift_ms, .. } => (1000.0 / frame_shift_ms, frame_length_ms / 2000.0),
    })
}

/// The time-frame range of each of `segments` one-second segments in a `time_frames`-long
/// spectrogram made by `preset`: all the same width, inside the matrix.
pub fn segment_ranges(preset: &AudioPreset, time_frames: usize, segments: usize) -> Vec<Range<usize>> {
    match frame_clock(preset) {
        Some((per_second, offset)) => {
            let width = (per_second.floor() as usize).clamp(1, time_frames / segments.max(1));
            (0..segments)
                .map(|s| {
                    let first = ((s as f64 - offset) * per_second).ceil().max(0.0) as usize;
                    let start = first.min(time_frames - width);
                    start..start + width
                })
                .collect()
        }
        None => {
            let width = time_frames / segments.max(1);
            (0..segments).map(|s| s * width..(s + 1) * width).collect()
        }
    }
}

/// One clip's segments: audio (segment-major), frames (segment-major, CHW), labels.
type ClipTensors = (Vec<f32>, Vec<f32>, Vec<i64>);

/// A batch of clips cut into segments.
#[derive(Debug, Clone)]
pub struct SegmentBatch {
    /// `[B * S, 1, F, W]` row-major, each segment's slice with frequency first.
    pub audio: Vec<f32>,
    /// `[F, W]`.
    pub audio_shape: [usize; 2],
    /// `[B * S, 3, size, size]`.
    pub frames: Vec<f32>,
    /// `[B * S]` segment labels.
    pub labels: Vec<i64>,
    pub segments: usize,
    pub clip_ids: Vec<String>,
}

impl SegmentBatch {
    pub fn clips(&self) -> usize {
        self.clip_ids.len()
    }
}

/// Assembles a [`SegmentBatch`] (use with [`crate::data::ShardSet::epoch_with`]). Frames are
/// resized to the model's square; at train time each clip is flipped horizontally with
/// probability 0.5 (the same flip for all its segments). No crop: a crop could cut the event out
/// of a second's only frame.
pub fn assemble_segments(segments: usize) -> impl Fn(&ShardMeta, &LoaderConfig, u64, Vec<RawRow>) -> Result<SegmentBatch> + Send + 'static {
    move |meta, cfg, epoch, rows| {
        let time_first = meta.audio_dims[0] == "time";
        let [rows_n, cols_n] = meta.audio_shape;
        let (f, t) = if time_first { (cols_n, rows_n) } else { (rows_n, cols_n) };
        let ranges = segment_ranges(&meta.preset.audio, t, segments);
        let width = ranges[0].len();
        let s = cfg.image_size;
        let per_frame = (3 * s * s) as usize;
        let items: Vec<Result<ClipTensors>> = rows
            .par_iter()
            .map(|r| {
                let Some(labels) = &r.segment_labels else { bail!("clip {} has no segment labels (not an AVE shard?)", r.clip_id) };
                ensure!(labels.len() == segments, "clip {}: {} segment labels, expected {segments}", r.clip_id, labels.len());
                ensure!(!r.frames.is_empty(), "clip {} has no frames", r.clip_id);
                let mut rng = Rng::derive(&[cfg.seed, epoch, fnv1a(&r.clip_id)]);
                let flip = cfg.train && rng.uniform() < 0.5;
                let mut audio = Vec::with_capacity(segments * f * width);
                for range in &ranges {
                    for fi in 0..f {
                        if time_first {
                            audio.extend(range.clone().map(|ti| r.audio[ti * f + fi]));
                        } else {
                            audio.extend_from_slice(&r.audio[fi * t + range.start..fi * t + range.end]);
                        }
                    }
                }
                let picks = select_frames(r.frames.len(), segments, false, &mut rng);
                let mut frames = vec![0f32; segments * per_frame];
                for (k, &p) in picks.iter().enumerate() {
                    let mut img = decode_jpeg(&r.clip_id, p, &r.frames[p])?;
                    if flip {
                        imageops::flip_horizontal_in_place(&mut img);
                    }
                    transform(&img, s, false, &mut rng, &mut frames[k * per_frame..(k + 1) * per_frame]);
                }
                Ok((audio, frames, labels.clone()))
            })
            .collect();
        let mut batch = SegmentBatch {
            audio: Vec::with_capacity(rows.len() * segments * f * width),
            audio_shape: [f, width],
            frames: Vec::with_capacity(rows.len() * segments * per_frame),
            labels: Vec::with_capacity(rows.len() * segments),
            segments,
            clip_ids: rows.iter().map(|r| r.clip_id.clone()).collect(),
        };
        for item in items {
            let (a, fr, l) = item?;
            batch.audio.extend(a);
            batch.frames.extend(fr);
            batch.labels.extend(l);
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psd_1004_seconds_map_onto_frames_centred_in_them() {
        let p = AudioPreset::psd_1004();
        let ranges = segment_ranges(&p, 1004, 10);
        assert_eq!(ranges[0], 0..100);
        assert_eq!(ranges[5], 502..602);
        assert_eq!(ranges[9], 904..1004, "the last second is kept inside the matrix");
        // Each frame's centre (hop 159, window 512, 16 kHz) lies in its second, give or take
        // one hop at the edges of the matrix.
        for (s, r) in ranges.iter().enumerate() {
            for j in r.clone() {
                let centre = (j as f64 * 159.0 + 256.0) / 16000.0;
                assert!(centre >= s as f64 - 0.01 && centre < s as f64 + 1.0 + 159.0 / 16000.0, "second {s}, frame {j} at {centre:.3} s");
            }
        }
    }

    #[test]
    fn other_presets_get_equal_width_ranges_inside_the_matrix() {
        for (preset, t) in [(AudioPreset::vggsound_stft(), 1251), (AudioPreset::kaldi_fbank(), 1024)] {
            let ranges = segment_ranges(&preset, t, 10);
            let w = ranges[0].len();
            assert!(w > 0 && ranges.iter().all(|r| r.len() == w && r.end <= t), "{}: {ranges:?}", preset.name);
            assert!(ranges.windows(2).all(|p| p[0].start < p[1].start), "{}: increasing", preset.name);
        }
        // vggsound-stft: centred STFT, 125 frames per second.
        assert_eq!(segment_ranges(&AudioPreset::vggsound_stft(), 1251, 10)[2], 250..375);
        // A 3-s preset has no seconds 3..9: they take the last slice inside the matrix.
        let cremad = segment_ranges(&AudioPreset::cremad_stft(), 188, 10);
        assert!(cremad.iter().all(|r| r.len() == 18 && r.end <= 188), "{cremad:?}");
        assert_eq!(cremad[1].start, 63);
        assert_eq!(cremad[9], 170..188);
    }
}
