//! Frame selection and image transforms of the reference loaders (torchvision semantics):
//! train = a random frame inside each of T equal segments, RandomResizedCrop(size, scale
//! (0.08, 1), ratio (3/4, 4/3)) + horizontal flip (p 0.5); eval = the middle frame of each
//! segment, Resize(size, size). Both end with ImageNet normalisation, CHW float.

use image::imageops::{self, FilterType};
use image::RgbImage;

use datasets::rng::Rng;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Indices of the T frames taken from `n` (train: random in each segment; eval: the middle).
pub fn select_frames(n: usize, t: usize, train: bool, rng: &mut Rng) -> Vec<usize> {
    (0..t)
        .map(|i| {
            let (start, end) = (i as f64 * n as f64 / t as f64, (i + 1) as f64 * n as f64 / t as f64);
            let x = if train { start + rng.uniform() * (end - start) } else { (start + end) / 2.0 };
            (x.floor() as usize).min(n.saturating_sub(1))
        })
        .collect()
}

/// torchvision `RandomResizedCrop.get_params`: (top, left, height, width).
pub fn random_resized_crop_params(w: u32, h: u32, rng: &mut Rng) -> (u32, u32, u32, u32) {
    let area = f64::from(w) * f64::from(h);
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * (0.08 + rng.uniform() * (1.0 - 0.08));
        let aspect = (lo + rng.uniform() * (hi - lo)).exp();
        let cw = (target * aspect).sqrt().round() as u32;
        let ch = (target / aspect).sqrt().round() as u32;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let top = rng.below((h - ch + 1) as usize) as u32;
            let left = rng.below((w - cw + 1) as usize) as u32;
            return (top, left, ch, cw);
        }
    }
    // Fallback: central crop with the ratio clamped into range.
    let ratio = f64::from(w) / f64::from(h);
    let (cw, ch) = if ratio < 3.0 / 4.0 {
        (w, (f64::from(w) / (3.0 / 4.0)).round() as u32)
    } else if ratio > 4.0 / 3.0 {
        ((f64::from(h) * 4.0 / 3.0).round() as u32, h)
    } else {
        (w, h)
    };
    ((h - ch.min(h)) / 2, (w - cw.min(w)) / 2, ch.min(h), cw.min(w))
}

/// Transforms one decoded frame into `out` (3 x size x size, CHW, normalised).
pub fn transform(img: &RgbImage, size: u32, train: bool, rng: &mut Rng, out: &mut [f32]) {
    let resized = if train {
        let (top, left, ch, cw) = random_resized_crop_params(img.width(), img.height(), rng);
        let crop = imageops::crop_imm(img, left, top, cw, ch).to_image();
        let mut r = imageops::resize(&crop, size, size, FilterType::Triangle);
        if rng.uniform() < 0.5 {
            imageops::flip_horizontal_in_place(&mut r);
        }
        r
    } else {
        imageops::resize(img, size, size, FilterType::Triangle)
    };
    let plane = (size * size) as usize;
    for (i, p) in resized.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(p[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_takes_segment_middles_train_stays_inside_segments() {
        let mut rng = Rng::new(1);
        assert_eq!(select_frames(10, 3, false, &mut rng), [1, 5, 8]);
        assert_eq!(select_frames(2, 3, false, &mut rng), [0, 1, 1]);
        assert_eq!(select_frames(1, 3, false, &mut rng), [0, 0, 0]);
        for _ in 0..200 {
            let s = select_frames(10, 3, true, &mut rng);
            assert!(s[0] <= 3 && (3..=6).contains(&s[1]) && (6..=9).contains(&s[2]), "{s:?}");
        }
    }

    #[test]
    fn crops_fit_and_respect_scale_and_ratio() {
        let mut rng = Rng::new(7);
        for _ in 0..500 {
            let (top, left, h, w) = random_resized_crop_params(320, 240, &mut rng);
            assert!(top + h <= 240 && left + w <= 320);
            let scale = f64::from(w * h) / (320.0 * 240.0);
            assert!((0.07..=1.0).contains(&scale), "{scale}");
        }
    }
}
