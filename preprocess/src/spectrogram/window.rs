//! Window functions as scipy/torch define them.

use std::f64::consts::PI;

/// Periodic Hann (`scipy.signal.get_window('hann', n)`, librosa's default).
pub fn hann_periodic(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos()).collect()
}

/// Symmetric Hann (`torch.hann_window(n, periodic=False)`, Kaldi's "hanning").
pub fn hann_symmetric(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    (0..n).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos()).collect()
}

/// Periodic Tukey (`scipy.signal.get_window(('tukey', alpha), n)`): the symmetric window of
/// length n + 1 without its last sample.
pub fn tukey_periodic(n: usize, alpha: f64) -> Vec<f64> {
    let m = n + 1;
    if alpha <= 0.0 {
        return vec![1.0; n];
    }
    let width = (alpha * (m - 1) as f64 / 2.0).floor() as usize;
    let denom = alpha * (m - 1) as f64;
    (0..n)
        .map(|i| {
            let x = i as f64;
            if i <= width {
                0.5 * (1.0 + (PI * (-1.0 + 2.0 * x / denom)).cos())
            } else if i < m - width - 1 {
                1.0
            } else {
                0.5 * (1.0 + (PI * (-2.0 / alpha + 1.0 + 2.0 * x / denom)).cos())
            }
        })
        .collect()
}
