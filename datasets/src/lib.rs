//! The contract between the two halves of the toolkit.
//!
//! `preprocess` writes what this crate describes and `trainer` reads it; neither talks to the other.
//! This crate knows neither FFmpeg nor Burn: it holds
//! - [`catalog`]: how each dataset looks on disk before preprocessing (clips, labels, splits, and
//!   what the shipped manifests list but the disk lacks);
//! - [`preset`]: the preprocessing parameters, serialisable and recorded in every shard;
//! - [`schema`], [`shard`]: the Parquet shard format, its writer (atomic, deterministic) and its
//!   streaming reader;
//! - [`index`], [`card`]: the per-dataset `index.json` and dataset card `README.md`;
//! - [`durable`]: writes that a full disk or a kill never leave half done.

pub mod card;
pub mod catalog;
pub mod clip_id;
pub mod durable;
mod error;
pub mod index;
pub mod manifest_text;
pub mod part;
pub mod preset;
pub mod rng;
pub mod schema;
pub mod shard;

/// Re-exported so readers of shards use the same Arrow as the writer.
pub use arrow;
pub use catalog::{Catalog, ClipEntry, DatasetKind, Split};
pub use error::{Error, Result};
pub use preset::{AudioPreset, FramePreset, Preset};

/// Version of the shard layout; bumped whenever a column or its meaning changes.
pub const SCHEMA_VERSION: u32 = 1;
/// Version of the toolkit that wrote a shard.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
