//! Preprocessing parameters. Plain data: `preprocess` executes them, every shard records the
//! full preset as JSON, and `trainer` reads the output shape from it.

use serde::{Deserialize, Serialize};

/// Everything that decides the content of a shard row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub audio: AudioPreset,
    pub frames: FramePreset,
}

/// How a clip's audio becomes a 2-D float matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPreset {
    /// Preset name, e.g. `cremad-stft`.
    pub name: String,
    /// Target sample rate; `None` keeps the source's native rate (the Kinetics-Sounds reference).
    pub sample_rate: Option<u32>,
    /// Repeat the waveform until it is at least this long, then cut to exactly this length
    /// (`np.tile(x, k)[:n]`); `None` keeps the decoded length.
    pub tile_to_seconds: Option<f64>,
    /// Clamp samples to [-1, 1] before the transform (the STFT/PSD references do).
    pub clip_to_unit: bool,
    /// Subtract the waveform mean before the transform (the Kaldi fbank reference does).
    pub subtract_mean: bool,
    pub transform: AudioTransform,
}

/// The time-frequency transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AudioTransform {
    /// `log(|STFT| + log_offset)`, librosa semantics: periodic Hann, `center` pads n_fft/2 zeros
    /// on both sides. Output `[n_fft/2 + 1, frames]`.
    LogStft { n_fft: usize, hop_length: usize, center: bool, log_offset: f32 },
    /// `torchaudio.compliance.kaldi.fbank` (povey defaults except the fields here), then
    /// pad with zeros / cut to `num_frames`, then `(x - norm_mean) / (2 * norm_std)`.
    /// Output `[num_frames, num_mel_bins]` (time, mel), as the reference saves it.
    KaldiFbank {
        num_mel_bins: usize,
        frame_length_ms: f64,
        frame_shift_ms: f64,
        preemphasis: f32,
        low_freq: f64,
        num_frames: usize,
        norm_mean: f32,
        norm_std: f32,
    },
    /// `scipy.signal.spectrogram` (Tukey window, constant detrend, one-sided density PSD), then
    /// `log(P + log_offset)`, then an optional per-clip z-score `(S - mean) / (std + 1e-9)`.
    /// Output `[nperseg/2 + 1, frames]`.
    LogPsd { nperseg: usize, noverlap: usize, tukey_alpha: f64, log_offset: f64, zscore: bool },
}

/// Which frames of a video are kept and how they are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FramePreset {
    /// Frames per second of video kept.
    pub fps: f64,
    /// Where inside each 1/fps interval the frame is taken, as a fraction (0.5 = the middle).
    pub phase: f64,
    /// At most this many frames per clip.
    pub max_frames: Option<u32>,
    /// Exactly this many frames: a shorter video repeats its last frame (AVE's 10 segments).
    pub exact_frames: Option<u32>,
    /// Resize so the shorter side has this many pixels, keeping the aspect ratio.
    pub short_side: u32,
    /// JPEG quality, 1..=100.
    pub jpeg_quality: u8,
}

impl Default for FramePreset {
    fn default() -> Self {
        Self { fps: 1.0, phase: 0.5, max_frames: Some(10), exact_frames: None, short_side: 256, jpeg_quality: 90 }
    }
}

impl AudioPreset {
    /// `cremad-stft`: 22050 Hz, tile to 3 s, STFT 512/353, log magnitude -> 257 x 188.
    pub fn cremad_stft() -> Self {
        Self {
            name: "cremad-stft".into(),
            sample_rate: Some(22050),
            tile_to_seconds: Some(3.0),
            clip_to_unit: true,
            subtract_mean: false,
            transform: AudioTransform::LogStft { n_fft: 512, hop_length: 353, center: true, log_offset: 1e-7 },
        }
    }

    /// `vggsound-stft`: 16 kHz, the full 10 s, STFT 256/128 -> 129 x 1251 (the 5-s crop is the
    /// trainer's).
    pub fn vggsound_stft() -> Self {
        Self {
            name: "vggsound-stft".into(),
            sample_rate: Some(16000),
            tile_to_seconds: Some(10.0),
            clip_to_unit: true,
            subtract_mean: false,
            transform: AudioTransform::LogStft { n_fft: 256, hop_length: 128, center: true, log_offset: 1e-7 },
        }
    }

    /// `kaldi-fbank`: native rate, 128 mel, 25/10 ms, 1024 frames, AudioSet normalisation.
    pub fn kaldi_fbank() -> Self {
        Self {
            name: "kaldi-fbank".into(),
            sample_rate: None,
            tile_to_seconds: None,
            clip_to_unit: false,
            subtract_mean: true,
            transform: AudioTransform::KaldiFbank {
                num_mel_bins: 128,
                frame_length_ms: 25.0,
                frame_shift_ms: 10.0,
                preemphasis: 0.97,
                low_freq: 20.0,
                num_frames: 1024,
                norm_mean: -4.503877,
                norm_std: 5.141276,
            },
        }
    }

    /// `psd-1004`: 16 kHz, tile to 10 s, scipy PSD 512/353, log, z-score -> 257 x 1004.
    pub fn psd_1004() -> Self {
        Self {
            name: "psd-1004".into(),
            sample_rate: Some(16000),
            tile_to_seconds: Some(10.0),
            clip_to_unit: true,
            subtract_mean: false,
            transform: AudioTransform::LogPsd { nperseg: 512, noverlap: 353, tukey_alpha: 0.25, log_offset: 1e-7, zscore: true },
        }
    }

    /// `synthetic-stft`: the small preset of the synthetic corpus, 16 kHz, 2 s, STFT 128/128
    /// -> 65 x 251 (125 Hz bins separate the class tones); small enough for the `tiny` model on
    /// a CPU, and the shards of the default corpus stay ~30 MB.
    pub fn synthetic_stft() -> Self {
        Self {
            name: "synthetic-stft".into(),
            sample_rate: Some(16000),
            tile_to_seconds: Some(2.0),
            clip_to_unit: true,
            subtract_mean: false,
            transform: AudioTransform::LogStft { n_fft: 128, hop_length: 128, center: true, log_offset: 1e-7 },
        }
    }

    /// The presets by name, as the command line accepts them.
    pub fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "cremad-stft" => Self::cremad_stft(),
            "vggsound-stft" => Self::vggsound_stft(),
            "kaldi-fbank" => Self::kaldi_fbank(),
            "psd-1004" => Self::psd_1004(),
            "synthetic-stft" => Self::synthetic_stft(),
            _ => return None,
        })
    }

    pub const NAMES: [&'static str; 5] = ["cremad-stft", "vggsound-stft", "kaldi-fbank", "psd-1004", "synthetic-stft"];

    /// Number of samples the transform sees, when the preset fixes it.
    pub fn fixed_samples(&self) -> Option<usize> {
        Some((self.tile_to_seconds? * f64::from(self.sample_rate?)).round() as usize)
    }

    /// Shape `[rows, cols]` and dimension names of the output for `samples` input samples at
    /// `rate` Hz. Fixed for every preset except an untiled STFT/PSD.
    pub fn output_shape(&self, samples: usize, rate: u32) -> ([usize; 2], [&'static str; 2]) {
        let samples = self.fixed_samples().unwrap_or(samples);
        match &self.transform {
            AudioTransform::LogStft { n_fft, hop_length, center, .. } => {
                let frames = if *center { 1 + samples / hop_length } else { 1 + samples.saturating_sub(*n_fft) / hop_length };
                ([n_fft / 2 + 1, frames], ["freq", "time"])
            }
            AudioTransform::KaldiFbank { num_mel_bins, num_frames, .. } => {
                let _ = rate;
                ([*num_frames, *num_mel_bins], ["time", "mel"])
            }
            AudioTransform::LogPsd { nperseg, noverlap, .. } => {
                let step = nperseg - noverlap;
                ([nperseg / 2 + 1, samples.saturating_sub(*noverlap) / step], ["freq", "time"])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_reference() {
        // Shapes the reference computes (ogm-ge-reference.md sections 2.1-2.4).
        let cases = [
            (AudioPreset::cremad_stft(), [257, 188]),
            (AudioPreset::vggsound_stft(), [129, 1251]),
            (AudioPreset::kaldi_fbank(), [1024, 128]),
            (AudioPreset::psd_1004(), [257, 1004]),
        ];
        for (preset, want) in cases {
            assert_eq!(preset.output_shape(0, 16000).0, want, "{}", preset.name);
        }
    }

    #[test]
    fn presets_round_trip_through_json() {
        for name in AudioPreset::NAMES {
            let p = Preset { audio: AudioPreset::by_name(name).unwrap(), frames: FramePreset::default() };
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Preset>(&json).unwrap(), p);
        }
        assert!(AudioPreset::by_name("nope").is_none());
    }
}
