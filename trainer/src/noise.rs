//! GE's Gaussian noise: `N(0, std)` values shaped like a gradient.
//!
//! Burn's `random_like` on Flex draws every value one after another on one thread, building a
//! sampler for each value: 0.3 s of the 0.32 s that OGM-GE's modulation took in a `paper` step on
//! 2 cores (22 million conv-weight values a step). On Flex, [`normal_like`] draws the values in
//! fixed chunks of [`CHUNK`], each chunk from its own generator (ChaCha12, Flex's own kind),
//! seeded by one draw from Flex's seeded generator and the chunk's index; the chunks spread over
//! rayon's threads. The numbers never depend on the thread count, and a run's seed still fixes
//! them. Every other backend draws with its own `random_like` (on a GPU, on the device; on
//! LibTorch, PyTorch's generator).

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::downcast::{cast, same};

/// Values a chunk's generator draws.
pub const CHUNK: usize = 1 << 16;

/// Values of `N(0, std)` in the shape of `like`, on `like`'s device.
pub fn normal_like<B: Backend, const D: usize>(like: &Tensor<B, D>, std: f64) -> Tensor<B, D> {
    match cast::<Tensor<Flex, D>, _>(like.clone()) {
        Ok(flex) => same(flex_normal(flex.dims(), std, &flex.device())),
        Err(like) => like.random_like(Distribution::Normal(0.0, std)),
    }
}

/// [`normal_like`] on Flex: one draw from Flex's generator (so `Backend::seed` fixes it, and the
/// next draw differs), then the chunks in parallel.
fn flex_normal<const D: usize>(shape: [usize; D], std: f64, device: &burn::tensor::Device<Flex>) -> Tensor<Flex, D> {
    // Two 30-bit draws (Flex's integers are 32-bit and signed): a 60-bit seed.
    let draw = Tensor::<Flex, 1, Int>::random([2], Distribution::Uniform(0.0, (1u64 << 30) as f64), device).into_data();
    let halves = draw.iter::<i64>().map(|v| v as u64).collect::<Vec<_>>();
    let base = (halves[0] << 30) | halves[1];
    let mut values = vec![0.0f32; shape.iter().product::<usize>()];
    fill(&mut values, base, std);
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `values` drawn from `N(0, std)`: chunk `i` from the generator seeded by `base` and `i`.
fn fill(values: &mut [f32], base: u64, std: f64) {
    values.par_chunks_mut(CHUNK).enumerate().for_each(|(i, chunk)| {
        let mut rng = StdRng::seed_from_u64(base ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for v in chunk {
            let z: f64 = rng.sample(StandardNormal);
            *v = (z * std) as f32;
        }
    });
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::Tensor;

    use super::{fill, normal_like, CHUNK};

    fn drawn(base: u64, threads: usize) -> Vec<f32> {
        let mut v = vec![0.0f32; 3 * CHUNK + 1000];
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| fill(&mut v, base, 2.0));
        v
    }

    /// Over several chunks: the same numbers on 1 and 3 threads, other ones from another seed,
    /// and chunks that are not copies of each other.
    #[test]
    fn flex_noise_does_not_depend_on_threads() {
        let one = drawn(11, 1);
        assert_eq!(drawn(11, 3), one, "thread count changed the noise");
        assert_ne!(drawn(12, 1), one, "the seed changed nothing");
        assert_ne!(one[..100], one[CHUNK..CHUNK + 100], "chunks repeat");
    }

    /// `normal_like` on Flex: mean 0 and std 2 within six standard errors, and two draws differ.
    #[test]
    fn flex_noise_is_normal() {
        let like = Tensor::<Flex, 2>::zeros([3, CHUNK + 1000], &Default::default());
        let one = normal_like(&like, 2.0).into_data().to_vec::<f32>().unwrap();
        let n = one.len() as f64;
        let mean = one.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = one.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 6.0 * 2.0 / n.sqrt(), "mean {mean}");
        assert!((var / 4.0 - 1.0).abs() < 6.0 * (2.0 / n).sqrt(), "variance {var}");
        let inside = one.iter().filter(|v| v.abs() < 2.0).count() as f64 / n;
        let p = 0.682_689_492;
        assert!((inside - p).abs() < 6.0 * (p * (1.0 - p) / n).sqrt(), "share within one std {inside}");
        assert_ne!(normal_like(&like, 2.0).into_data().to_vec::<f32>().unwrap(), one, "a second draw repeats the first");
    }
}
