//! Audio presets: waveform -> 2-D float matrix, with the semantics of each Python reference.
//! Everything is computed in f64 and stored as f32.

mod fbank;
mod psd;
mod stft;
mod window;

use datasets::preset::{AudioPreset, AudioTransform};

/// A row-major matrix with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    pub shape: [usize; 2],
    pub values: Vec<f32>,
}

/// What the preset did to the waveform's length before the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shaping {
    /// The clip was shorter than the preset needs and was repeated.
    pub tiled: bool,
}

/// `np.tile(x, k)[:n]` with k large enough: repeat `x` until it has at least `n` samples, then cut.
/// Returns whether any repetition was needed.
pub fn tile_to(x: &mut Vec<f32>, n: usize) -> bool {
    let original = x.len();
    if original == 0 {
        x.resize(n, 0.0);
        return true;
    }
    let tiled = original < n;
    while x.len() < n {
        let take = (n - x.len()).min(original);
        x.extend_from_within(..take);
    }
    x.truncate(n);
    tiled
}

/// Runs a preset on a mono waveform at `rate` Hz (already at the preset's rate).
pub fn compute(preset: &AudioPreset, mut samples: Vec<f32>, rate: u32) -> (Spectrogram, Shaping) {
    let tiled = match preset.tile_to_seconds {
        Some(seconds) => tile_to(&mut samples, (seconds * f64::from(rate)).round() as usize),
        None => false,
    };
    if preset.clip_to_unit {
        samples.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
    }
    let mut x: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
    if preset.subtract_mean && !x.is_empty() {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        x.iter_mut().for_each(|s| *s -= mean);
    }
    let spec = match &preset.transform {
        AudioTransform::LogStft { n_fft, hop_length, center, log_offset } => stft::log_stft(&x, *n_fft, *hop_length, *center, f64::from(*log_offset)),
        AudioTransform::KaldiFbank { num_mel_bins, frame_length_ms, frame_shift_ms, preemphasis, low_freq, num_frames, norm_mean, norm_std } => {
            let params = fbank::FbankParams {
                sample_rate: f64::from(rate),
                num_mel_bins: *num_mel_bins,
                frame_length_ms: *frame_length_ms,
                frame_shift_ms: *frame_shift_ms,
                preemphasis: f64::from(*preemphasis),
                low_freq: *low_freq,
            };
            let mut s = fbank::fbank(&x, &params);
            fbank::pad_and_normalise(&mut s, *num_frames, f64::from(*norm_mean), f64::from(*norm_std));
            s
        }
        AudioTransform::LogPsd { nperseg, noverlap, tukey_alpha, log_offset, zscore } => {
            psd::log_psd(&x, f64::from(rate), *nperseg, *noverlap, *tukey_alpha, *log_offset, *zscore)
        }
    };
    (spec, Shaping { tiled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiling_is_np_tile_then_cut() {
        let cases: &[(&[f32], usize, &[f32], bool)] = &[
            (&[1.0, 2.0, 3.0], 7, &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0], true),
            (&[1.0, 2.0, 3.0], 2, &[1.0, 2.0], false),
            (&[1.0, 2.0], 2, &[1.0, 2.0], false),
            (&[], 3, &[0.0, 0.0, 0.0], true),
        ];
        for (input, n, want, tiled) in cases {
            let mut x = input.to_vec();
            assert_eq!(tile_to(&mut x, *n), *tiled);
            assert_eq!(&x, want);
        }
    }

    #[test]
    fn every_preset_produces_its_declared_shape() {
        for name in AudioPreset::NAMES {
            let preset = AudioPreset::by_name(name).unwrap();
            let rate = preset.sample_rate.unwrap_or(44100);
            let x: Vec<f32> = (0..rate as usize * 3).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
            let n = x.len();
            let (spec, _) = compute(&preset, x, rate);
            assert_eq!(spec.shape, preset.output_shape(n, rate).0, "{name}");
            assert_eq!(spec.values.len(), spec.shape[0] * spec.shape[1]);
            assert!(spec.values.iter().all(|v| v.is_finite()), "{name}");
        }
    }
}
