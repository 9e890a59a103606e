//! `torchaudio.compliance.kaldi.fbank` with `htk_compat=True, use_energy=False,
//! window_type='hanning', dither=0.0` and the other povey defaults: snip_edges, per-frame DC
//! removal, pre-emphasis, symmetric Hann, zero-padding to a power of two, power spectrum,
//! triangular mel banks (Kaldi mel scale 1127 ln(1 + f/700)), log with a floor of f32 epsilon.
//! Output `[frames, num_mel_bins]`.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use super::window::hann_symmetric;
use super::Spectrogram;

#[derive(Debug, Clone)]
pub struct FbankParams {
    pub sample_rate: f64,
    pub num_mel_bins: usize,
    pub frame_length_ms: f64,
    pub frame_shift_ms: f64,
    pub preemphasis: f64,
    pub low_freq: f64,
}

fn mel(f: f64) -> f64 {
    1127.0 * (1.0 + f / 700.0).ln()
}

/// `get_mel_banks`: `[num_bins][padded/2 + 1]`, the Nyquist column zero.
fn mel_banks(p: &FbankParams, padded: usize) -> Vec<Vec<f64>> {
    let nyquist = 0.5 * p.sample_rate;
    let (low, high) = (p.low_freq, nyquist);
    let fft_bin_width = p.sample_rate / padded as f64;
    let (mel_low, mel_high) = (mel(low), mel(high));
    let delta = (mel_high - mel_low) / (p.num_mel_bins + 1) as f64;
    (0..p.num_mel_bins)
        .map(|b| {
            let left = mel_low + b as f64 * delta;
            let center = left + delta;
            let right = center + delta;
            let mut row: Vec<f64> = (0..padded / 2)
                .map(|k| {
                    let m = mel(fft_bin_width * k as f64);
                    let up = (m - left) / (center - left);
                    let down = (right - m) / (right - center);
                    up.min(down).max(0.0)
                })
                .collect();
            row.push(0.0);
            row
        })
        .collect()
}

pub fn fbank(x: &[f64], p: &FbankParams) -> Spectrogram {
    let window_size = (p.sample_rate * p.frame_length_ms * 0.001) as usize;
    let window_shift = (p.sample_rate * p.frame_shift_ms * 0.001) as usize;
    let padded = window_size.next_power_of_two();
    let frames = if x.len() >= window_size { 1 + (x.len() - window_size) / window_shift } else { 0 };
    let window = hann_symmetric(window_size);
    let banks = mel_banks(p, padded);
    let fft = FftPlanner::<f64>::new().plan_fft_forward(padded);
    let mut buf = vec![Complex::new(0.0, 0.0); padded];
    let mut scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
    let mut frame = vec![0f64; window_size];
    let mut power = vec![0f64; padded / 2 + 1];
    let floor = f64::from(f32::EPSILON);
    let mut values = Vec::with_capacity(frames * p.num_mel_bins);
    for t in 0..frames {
        frame.copy_from_slice(&x[t * window_shift..t * window_shift + window_size]);
        let mean = frame.iter().sum::<f64>() / window_size as f64;
        frame.iter_mut().for_each(|s| *s -= mean);
        // Pre-emphasis with the first sample replicated: y[0] = x[0] - c * x[0].
        for i in (1..window_size).rev() {
            frame[i] -= p.preemphasis * frame[i - 1];
        }
        frame[0] -= p.preemphasis * frame[0];
        for (k, b) in buf.iter_mut().enumerate() {
            *b = Complex::new(if k < window_size { frame[k] * window[k] } else { 0.0 }, 0.0);
        }
        fft.process_with_scratch(&mut buf, &mut scratch);
        for (k, pw) in power.iter_mut().enumerate() {
            *pw = buf[k].norm_sqr();
        }
        for bank in &banks {
            let e: f64 = bank.iter().zip(&power).map(|(w, p)| w * p).sum();
            values.push(e.max(floor).ln() as f32);
        }
    }
    Spectrogram { shape: [frames, p.num_mel_bins], values }
}

/// Zero-pads or cuts to `num_frames` rows, then `(x - mean) / (2 * std)` (AST statistics), in the
/// reference's order.
pub fn pad_and_normalise(s: &mut Spectrogram, num_frames: usize, mean: f64, std: f64) {
    let cols = s.shape[1];
    s.values.resize(num_frames * cols, 0.0);
    s.shape[0] = num_frames;
    s.values.iter_mut().for_each(|v| *v = ((f64::from(*v) - mean) / (std * 2.0)) as f32);
}
