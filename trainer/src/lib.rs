//! OGM-GE training on Burn. Never links FFmpeg: it reads shards written by `preprocess`.
//!
//! - [`model`]: ResNet18 trunks and fusion heads with uni-modal logits;
//! - [`methods`]: the balancing methods, one file each, behind one interface;
//! - [`balance`]: the OGM rule's parts (coefficients, modulation) and the step log's record;
//! - [`data`]: the streaming shard loader; [`transform`]: frame selection and augmentation;
//! - [`driver`]: the one epoch loop (checkpoints, schedule, rule, logs) every task runs in;
//! - [`compare`]: many runs (methods x optimisers x seeds) and their comparison table;
//! - [`train`]: the classifier's task, evaluation and CSV view; [`metrics`]: accuracy, macro-F1, mAP;
//! - [`probe`]: linear probes on a trained run's frozen encoders (the paper's uni-modal protocol);
//! - [`localize`]: the AVE event-localization model and its loop;
//! - [`run_log`], [`plot`], [`progress`]: the run folder, its PNG plots, the progress bar;
//! - [`config_file`]: a JSON config file under the command line's flags;
//! - [`optim`]: SGD and Adam with PyTorch's semantics and defaults;
//! - [`device`]: `--device` for this build's backend, and LibTorch's run-time version check.

pub mod arch;
#[cfg(any(feature = "cuda", feature = "wgpu-runtime", feature = "tch"))]
pub mod backend_check;
pub mod balance;
pub mod batch_norm;
pub mod checkpoint;
pub mod compare;
pub mod config_file;
pub mod conv;
pub mod data;
pub mod device;
pub mod downcast;
pub mod driver;
pub mod estimate;
pub mod flex_batch_norm;
pub mod flex_conv;
pub mod fusion_kind;
pub mod kernel_cache;
pub mod layout;
pub mod localize;
pub mod max_pool;
pub mod methods;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod optim;
pub mod plot;
pub mod probe;
pub mod progress;
pub mod recipe;
pub mod relu;
pub mod run_folder;
pub mod run_log;
pub mod task;
pub mod tensorboard;
#[cfg(feature = "tch")]
pub mod torch_autograd;
#[cfg(feature = "tch")]
mod torch_version;
pub mod train;
pub mod train_config;
pub mod transform;

/// The autodiff backend of this build: LibTorch with `--features tch` (CPU, or CUDA with
/// `tch-cuda`), CUDA through CubeCL with `--features cuda`, else Flex on the CPU.
#[cfg(feature = "tch")]
pub type Backend = burn::backend::Autodiff<burn::backend::LibTorch>;
#[cfg(all(feature = "cuda", not(feature = "tch")))]
pub type Backend = burn::backend::Autodiff<burn::backend::Cuda>;
#[cfg(all(feature = "wgpu", not(any(feature = "cuda", feature = "tch"))))]
pub type Backend = burn::backend::Autodiff<burn::backend::Wgpu>;
#[cfg(not(any(feature = "cuda", feature = "wgpu", feature = "tch")))]
pub type Backend = burn::backend::Autodiff<burn::backend::Flex>;
/// Whether [`Backend`] compiles its kernels at run time (CUDA, Vulkan), so that `trainer` keeps
/// them in a kernel cache (`kernel_cache`). LibTorch ships its kernels compiled.
pub const GPU_BACKEND: bool = cfg!(all(any(feature = "cuda", feature = "wgpu"), not(feature = "tch")));

/// What a plain `cargo test` leaves out, said in its output (`cargo xtask test` builds with
/// `--features trainer/wgpu-runtime` and runs them).
#[cfg(all(test, not(feature = "wgpu-runtime")))]
mod left_out {
    #[test]
    #[ignore = "tests/cubecl_backend.rs, gpu_check.rs and kernel_cache.rs run only with --features wgpu-runtime (`cargo xtask test`)"]
    fn vulkan_tests() {}
}
