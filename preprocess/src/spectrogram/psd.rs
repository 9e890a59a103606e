//! `scipy.signal.spectrogram(x, fs, nperseg, noverlap)` with scipy's defaults (periodic Tukey
//! 0.25, nfft = nperseg, `detrend='constant'` per segment, one-sided, `scaling='density'`,
//! `mode='psd'`, no boundary padding), then `log(P + offset)` and optionally the per-clip z-score
//! `(S - mean) / (std + 1e-9)` with the population std, as the AVE/VGGSound reference does.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use super::window::tukey_periodic;
use super::Spectrogram;

pub fn log_psd(x: &[f64], fs: f64, nperseg: usize, noverlap: usize, alpha: f64, offset: f64, zscore: bool) -> Spectrogram {
    let step = nperseg - noverlap;
    let frames = if x.len() >= nperseg { (x.len() - noverlap) / step } else { 0 };
    let bins = nperseg / 2 + 1;
    let window = tukey_periodic(nperseg, alpha);
    let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
    let fft = FftPlanner::<f64>::new().plan_fft_forward(nperseg);
    let mut buf = vec![Complex::new(0.0, 0.0); nperseg];
    let mut scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
    let mut log_p = vec![0f64; bins * frames];
    for t in 0..frames {
        let seg = &x[t * step..t * step + nperseg];
        let mean = seg.iter().sum::<f64>() / nperseg as f64;
        for ((b, &s), &w) in buf.iter_mut().zip(seg).zip(&window) {
            *b = Complex::new((s - mean) * w, 0.0);
        }
        fft.process_with_scratch(&mut buf, &mut scratch);
        for f in 0..bins {
            let mut p = buf[f].norm_sqr() * scale;
            // One-sided: double every bin but DC and (for even nperseg) Nyquist.
            if f != 0 && !(nperseg.is_multiple_of(2) && f == bins - 1) {
                p *= 2.0;
            }
            log_p[f * frames + t] = (p + offset).ln();
        }
    }
    if zscore && !log_p.is_empty() {
        let n = log_p.len() as f64;
        let mean = log_p.iter().sum::<f64>() / n;
        let std = (log_p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        log_p.iter_mut().for_each(|v| *v = (*v - mean) / (std + 1e-9));
    }
    Spectrogram { shape: [bins, frames], values: log_p.into_iter().map(|v| v as f32).collect() }
}
