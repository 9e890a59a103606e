//! OGM-GE training on Burn. Never links FFmpeg: it reads shards written by `preprocess`.
//!
//! - [`model`]: ResNet18 trunks and fusion heads with uni-modal logits;
//! - [`balance`]: the OGM / OGM-GE coefficient rule and gradient modulation;
//! - [`data`]: the streaming shard loader; [`transform`]: frame selection and augmentation;
//! - [`train`]: the loop, evaluation and run logs; [`metrics`]: accuracy, macro-F1, mAP.

pub mod balance;
pub mod data;
pub mod metrics;
pub mod model;
pub mod train;
pub mod transform;

/// The autodiff backend of this build: CUDA with `--features cuda`, else Flex on the CPU.
#[cfg(feature = "cuda")]
pub type Backend = burn::backend::Autodiff<burn::backend::Cuda>;
#[cfg(not(feature = "cuda"))]
pub type Backend = burn::backend::Autodiff<burn::backend::Flex>;
