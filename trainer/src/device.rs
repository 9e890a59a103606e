//! Which device this build's [`Backend`](crate::Backend) trains on (`--device`), and, on LibTorch,
//! that the libtorch found at run time is the one the binary was built against.
//!
//! - Flex: the CPU only (`auto`, `cpu`).
//! - CubeCL (CUDA, Vulkan): the runtime's default device (`auto`); `cuda:N` picks a GPU on CUDA.
//! - LibTorch: `cpu`, `cuda`, `cuda:N`; `auto` is the first GPU where the build links libtorch's
//!   CUDA half (`--features tch-cuda`) and the machine has one, else the CPU.

use thiserror::Error;

/// The device type of [`crate::Backend`].
pub type Device = burn::tensor::Device<crate::Backend>;

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("--device {spec}: this build ({build}) has {offers}")]
    NotInBuild { spec: String, build: &'static str, offers: &'static str },
    #[error("--device {spec}: LibTorch sees no CUDA device{hint}")]
    NoCuda { spec: String, hint: &'static str },
    #[error(
        "libtorch {found} was loaded from {dir}, but this binary was built against torch {built}: install torch=={built_plain} there (`cargo xtask setup` does in .venv) or rebuild against {found}"
    )]
    TorchVersion { found: String, built: &'static str, built_plain: String, dir: String },
}

/// The backend this build trains on, in words (the run's config and the benchmark's rows).
pub const BUILD: &str = if cfg!(feature = "tch") {
    "LibTorch"
} else if cfg!(feature = "cuda") {
    "CUDA (CubeCL)"
} else if cfg!(feature = "wgpu") {
    "Vulkan/WebGPU (CubeCL)"
} else {
    "Flex (CPU)"
};

/// The torch version the LibTorch build was linked against (`torch/version.py` of that libtorch).
#[cfg(feature = "tch")]
pub const TORCH_BUILT: &str = env!("OGMGE_TORCH_BUILT");

/// Parses `--device` for this build: `auto` (or empty), `cpu`, `cuda`, `cuda:N`.
pub fn parse(spec: &str) -> Result<Device, DeviceError> {
    let spec = spec.trim();
    let index = |rest: &str| rest.strip_prefix(':').map_or(Some(0), |n| n.parse::<usize>().ok());
    let not_in_build = |offers| DeviceError::NotInBuild { spec: spec.to_owned(), build: BUILD, offers };
    #[cfg(feature = "tch")]
    {
        use burn::backend::libtorch::LibTorchDevice;
        let cuda = |i: usize| {
            if tch::Cuda::is_available() && (i as i64) < tch::Cuda::device_count() {
                Ok(LibTorchDevice::Cuda(i))
            } else {
                let hint = if cfg!(feature = "tch-cuda") { "" } else { " (this build does not link libtorch's CUDA half: build with --features tch-cuda)" };
                Err(DeviceError::NoCuda { spec: spec.to_owned(), hint })
            }
        };
        match spec {
            "" | "auto" => Ok(if cfg!(feature = "tch-cuda") && tch::Cuda::is_available() { LibTorchDevice::Cuda(0) } else { LibTorchDevice::Cpu }),
            "cpu" => Ok(LibTorchDevice::Cpu),
            s if s.starts_with("cuda") => index(&s[4..]).map_or(Err(not_in_build("auto, cpu, cuda, cuda:N")), cuda),
            _ => Err(not_in_build("auto, cpu, cuda, cuda:N")),
        }
    }
    #[cfg(all(feature = "cuda", not(feature = "tch")))]
    {
        match spec {
            "" | "auto" => Ok(Default::default()),
            s if s.starts_with("cuda") => {
                index(&s[4..]).map(|i| burn::backend::cuda::CudaDevice { index: i }).ok_or_else(|| not_in_build("auto, cuda, cuda:N"))
            }
            _ => Err(not_in_build("auto, cuda, cuda:N")),
        }
    }
    #[cfg(all(feature = "wgpu", not(any(feature = "cuda", feature = "tch"))))]
    {
        let _ = index;
        match spec {
            "" | "auto" => Ok(Default::default()),
            _ => Err(not_in_build("auto")),
        }
    }
    #[cfg(not(any(feature = "cuda", feature = "wgpu", feature = "tch")))]
    {
        let _ = index;
        match spec {
            "" | "auto" | "cpu" => Ok(Default::default()),
            _ => Err(not_in_build("auto, cpu (build with --features tch or cuda for a GPU)")),
        }
    }
}

/// Before the first tensor: keeps large tensors in the heap ([`keep_heap`]); on LibTorch, also
/// checks that the libtorch this process loaded is the version it was built against, and gives
/// it `RAYON_NUM_THREADS` threads where that is set (each of `compare --jobs`'s processes gets its
/// share of the cores that way).
pub fn prepare() -> Result<(), DeviceError> {
    keep_heap();
    #[cfg(feature = "tch")]
    {
        if let Some((found, dir)) = loaded_torch() {
            let plain = |v: &str| v.split('+').next().unwrap_or(v).to_owned();
            if plain(&found) != plain(TORCH_BUILT) {
                return Err(DeviceError::TorchVersion { found, built: TORCH_BUILT, built_plain: plain(TORCH_BUILT), dir });
            }
        }
        if let Some(n) = std::env::var("RAYON_NUM_THREADS").ok().and_then(|n| n.parse::<i32>().ok()).filter(|&n| n > 0) {
            tch::set_num_threads(n);
        }
    }
    Ok(())
}

/// glibc's thresholds above which an allocation gets its own mapping, and above which freed heap
/// goes back to the system (16 GiB: never, in practice).
const MALLOC_KEEP: [(&str, &str); 2] = [("MALLOC_MMAP_THRESHOLD_", "17179869184"), ("MALLOC_TRIM_THRESHOLD_", "17179869184")];

/// LibTorch and Flex allocate their tensors with `malloc`; glibc maps every allocation over
/// 32 MiB afresh and unmaps it when freed, so each training step of the `paper` model faulted its
/// activations' pages in anew (a fifth of a step's time in the kernel, under `perf`). glibc reads
/// its thresholds from the environment only when a process starts: the binary starts itself once
/// more with them set (the process is replaced, its arguments and streams kept), unless the user
/// set them. Measured (`paper`, batch 16, 2 cores): LibTorch 6482 -> 5371 ms a step
/// (docs/libtorch.md), Flex 6268 -> 5444 ms (docs/speed.md). Freed memory then stays with the
/// process: its resident size keeps its peak.
fn keep_heap() {
    use std::os::unix::process::CommandExt;
    if MALLOC_KEEP.iter().any(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).envs(MALLOC_KEEP).exec();
    // Only reached when the binary could not start itself again: train on as before.
    tracing::warn!("could not restart with glibc's allocation thresholds set ({err}); training goes on without them");
}

/// The version and folder of the `libtorch_cpu.so` this process mapped; None where its tree does
/// not say (`torch_version`).
#[cfg(feature = "tch")]
fn loaded_torch() -> Option<(String, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let dir = std::path::Path::new(lib).parent()?;
    Some((crate::torch_version::of_lib_dir(dir)?, dir.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_build_takes_auto_and_names_what_it_offers() {
        assert!(parse("auto").is_ok());
        assert!(parse("").is_ok());
        let e = parse("tpu:3").expect_err("no build has a TPU").to_string();
        assert!(e.contains("--device tpu:3") && e.contains(BUILD), "{e}");
    }
}
