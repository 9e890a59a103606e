//! `log(|librosa.stft(x, n_fft, hop_length)| + offset)`: periodic Hann of length n_fft, with
//! `center` padding n_fft/2 zeros on each side (librosa >= 0.9's default `pad_mode='constant'`).

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use super::window::hann_periodic;
use super::Spectrogram;

pub fn log_stft(x: &[f64], n_fft: usize, hop: usize, center: bool, offset: f64) -> Spectrogram {
    let pad = if center { n_fft / 2 } else { 0 };
    let padded_len = x.len() + 2 * pad;
    let frames = if padded_len >= n_fft { 1 + (padded_len - n_fft) / hop } else { 0 };
    let bins = n_fft / 2 + 1;
    let window = hann_periodic(n_fft);
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n_fft);
    let mut buf = vec![Complex::new(0.0, 0.0); n_fft];
    let mut scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
    let mut values = vec![0f32; bins * frames];
    for t in 0..frames {
        let start = t * hop; // in padded coordinates
        for (k, b) in buf.iter_mut().enumerate() {
            let i = start + k;
            let s = if i >= pad && i - pad < x.len() { x[i - pad] } else { 0.0 };
            *b = Complex::new(s * window[k], 0.0);
        }
        fft.process_with_scratch(&mut buf, &mut scratch);
        for f in 0..bins {
            values[f * frames + t] = (buf[f].norm_sqr().sqrt() + offset).ln() as f32;
        }
    }
    Spectrogram { shape: [bins, frames], values }
}
