//! The kernel cache: where a GPU build keeps what it compiles, so that only the first process on
//! a machine (or the first after the cache is deleted) pays for compilation.
//!
//! CubeCL compiles every kernel at its first use in a process: to PTX through NVRTC on CUDA, to
//! SPIR-V on Vulkan. By default it keeps none of it, and the driver then compiles that again to
//! machine code (the NVIDIA driver from PTX, Mesa from SPIR-V). One folder holds all of it:
//! - `cubecl/`: CubeCL's compilation cache (PTX, SPIR-V) and its autotune results (fused builds);
//! - `driver/`: the driver's own cache (`CUDA_CACHE_PATH`, `MESA_SHADER_CACHE_DIR`), unless the
//!   environment already names one.
//!
//! The folder is self-contained: copied to another machine with the same GPU and driver, it spares
//! that machine the compilation too (entries are keyed by the device's properties; a different
//! device compiles and adds its own). A `cubecl.toml` (or `burn.toml` `[cubecl]` section) found
//! from the working directory up still sets everything else (autotune level, logging), and
//! `CUBECL_*` variables still override it; the cache locations are this folder's.

use std::path::{Path, PathBuf};

/// The cache's folder name under a runs folder (`runs/kernel-cache`: the parent of the run folders).
pub const DIR_NAME: &str = "kernel-cache";

/// The environment variable that names the folder (the `--kernel-cache` flag's).
pub const ENV: &str = "OGMGE_KERNEL_CACHE";

#[derive(Debug, thiserror::Error)]
pub enum KernelCacheError {
    #[error("kernel cache {}: {source}", path.display())]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("kernel cache {}: the GPU runtime was configured before its cache was set (set it before the first tensor)", path.display())]
    TooLate { path: PathBuf },
}

/// The folder used when none is named: `DIR_NAME` under the folder that holds the run folders.
pub fn default_dir(runs: &Path) -> PathBuf {
    runs.join(DIR_NAME)
}

/// Whether this build has a runtime that compiles kernels (CUDA, or CubeCL's Vulkan runtime: also
/// in test builds, whose training backend is still Flex), so that the cache does something.
pub const ACTIVE: bool = cfg!(any(feature = "cuda", feature = "wgpu-runtime"));

/// Points CubeCL's kernel and autotune caches and the driver's cache at `dir` (created), for the
/// rest of the process. Call it once, before the first tensor on a GPU device: CubeCL reads its
/// configuration once. Returns the absolute folder. A CPU-only build has nothing to cache and
/// creates nothing.
pub fn configure(dir: &Path) -> Result<PathBuf, KernelCacheError> {
    if !ACTIVE {
        return Ok(dir.to_path_buf());
    }
    let folder = |source| KernelCacheError::Folder { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir.join("cubecl")).map_err(folder)?;
    std::fs::create_dir_all(dir.join("driver")).map_err(folder)?;
    let abs = dir.canonicalize().map_err(folder)?;
    for var in ["CUDA_CACHE_PATH", "MESA_SHADER_CACHE_DIR"] {
        if std::env::var_os(var).is_none() {
            // Read by the driver when the device is first opened, later in this process; this
            // runs before any other thread touches the environment (the binaries call it first).
            std::env::set_var(var, abs.join("driver"));
        }
    }
    // The NVIDIA driver's default cap (256 MiB) would evict a paper model's kernels of several
    // builds; 4 GiB is its maximum.
    if std::env::var_os("CUDA_CACHE_MAXSIZE").is_none() {
        std::env::set_var("CUDA_CACHE_MAXSIZE", "4294967296");
    }
    set_cubecl(&abs.join("cubecl")).map_err(|()| KernelCacheError::TooLate { path: abs.clone() })?;
    Ok(abs)
}

#[cfg(any(feature = "cuda", feature = "wgpu-runtime"))]
fn set_cubecl(dir: &Path) -> Result<(), ()> {
    use cubecl::config::cache::CacheConfig;
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    if CubeClRuntimeConfig::storage().lock().is_some() {
        return Err(());
    }
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.compilation.cache = Some(CacheConfig::File(dir.to_path_buf()));
    config.autotune.cache = CacheConfig::File(dir.to_path_buf());
    CubeClRuntimeConfig::set(config);
    Ok(())
}

#[cfg(not(any(feature = "cuda", feature = "wgpu-runtime")))]
fn set_cubecl(_dir: &Path) -> Result<(), ()> {
    Ok(())
}
