//! The streaming loader over shards (no FFmpeg here: frames are JPEG bytes in the shards).
//!
//! An epoch visits the shards' row groups in an order shuffled from (seed, epoch), passes rows
//! through a shuffle buffer, and assembles batches on a producer thread (bounded channel, so the
//! trainer never waits on the CPU when enough cores exist); JPEG decoding and augmentation run in
//! parallel per batch. Everything random derives from (seed, epoch, clip id): the same seed gives
//! the same batches whatever the thread timing. Every row is visited exactly once per epoch.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};

use anyhow::{bail, Context, Result};
use datasets::arrow::array::{Array, BinaryArray, FixedSizeListArray, Float32Array, Int64Array, ListArray, StringArray, StructArray};
use datasets::schema::{col, ShardMeta};
use datasets::shard::ShardReader;
use datasets::Split;
use rayon::prelude::*;

use crate::transform::{select_frames, transform};
use datasets::rng::{fnv1a, Rng};

/// Which rows of a split a loader yields: all, or the two sides of a validation hold-out carved
/// from it by a stable hash of the clip id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    All,
    /// Rows outside the hold-out.
    Fit {
        val_fraction: f64,
    },
    /// The hold-out.
    Holdout {
        val_fraction: f64,
    },
}

impl Subset {
    fn keeps(self, clip_id: &str) -> bool {
        let held = |f: f64| (fnv1a(clip_id) % 10_000) < (f * 10_000.0) as u64;
        match self {
            Subset::All => true,
            Subset::Fit { val_fraction } => !held(val_fraction),
            Subset::Holdout { val_fraction } => held(val_fraction),
        }
    }
}

/// Loader settings.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Frames per clip (T).
    pub frames: usize,
    pub image_size: u32,
    /// Train: random frames, crops, flips, random audio crop; eval: deterministic.
    pub train: bool,
    pub seed: u64,
    pub shuffle_buffer: usize,
    /// Audio time-axis crop (VGGSound: 626 of 1251 frames).
    pub audio_crop: Option<usize>,
    /// Batches prepared ahead.
    pub prefetch: usize,
    pub subset: Subset,
    /// Leave out the epoch's last batch when it is short (PyTorch's `drop_last`).
    pub drop_last: bool,
}

/// One batch, ready to become tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, 1, F, T]` row-major.
    pub audio: Vec<f32>,
    pub audio_shape: [usize; 2],
    /// `[B * frames, 3, S, S]`.
    pub frames: Vec<f32>,
    pub labels: Vec<i64>,
    pub clip_ids: Vec<String>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The shards of one split.
#[derive(Debug, Clone)]
pub struct ShardSet {
    files: Vec<PathBuf>,
    /// (file index, row group, rows).
    groups: Vec<(usize, usize, usize)>,
    pub meta: ShardMeta,
}

impl ShardSet {
    /// Opens `<dataset_dir>/<split>/*.parquet` (hidden files ignored).
    pub fn open(dataset_dir: &Path, split: Split) -> Result<Self> {
        let dir = dataset_dir.join(split.name());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("no {split} shards in {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "parquet") && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        let mut groups = Vec::new();
        let mut meta: Option<ShardMeta> = None;
        for (i, f) in files.iter().enumerate() {
            let r = ShardReader::open(f)?;
            for g in 0..r.num_row_groups() {
                groups.push((i, g, r.row_group_rows(g)));
            }
            match &meta {
                None => meta = Some(r.meta().clone()),
                Some(first) => {
                    if let Some(why) = mismatch(first, r.meta()) {
                        bail!("shard {}: {why} than {} (shards of one split must come from one preprocessing run)", f.display(), files[0].display());
                    }
                }
            }
        }
        let Some(meta) = meta else { bail!("no {split} shards in {}", dir.display()) };
        let set = Self { files, groups, meta };
        anyhow::ensure!(set.rows() > 0, "the {split} split in {} has shards but no rows", dir.display());
        Ok(set)
    }

    /// A split to evaluate a model trained on `self` with: same classes, audio shape and preset.
    pub fn ensure_compatible(&self, other: &ShardSet) -> Result<()> {
        if let Some(why) = mismatch(&self.meta, &other.meta) {
            bail!("{} {why} than {}: train and test must come from one preprocessing run", other.files[0].display(), self.files[0].display());
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.groups.iter().map(|g| g.2).sum()
    }

    /// The rows `subset` keeps (reads the clip ids only).
    pub fn count(&self, subset: Subset) -> Result<usize> {
        let mut n = 0;
        for (fi, file) in self.files.iter().enumerate() {
            let reader = ShardReader::open(file)?;
            for &(_, g, _) in self.groups.iter().filter(|(f, _, _)| *f == fi) {
                let batch = reader.read_row_group(g, Some(&[col::CLIP_ID]))?;
                let ids = batch.column(0).as_any().downcast_ref::<StringArray>().with_context(|| format!("shard {}: clip_id type", file.display()))?;
                n += ids.iter().flatten().filter(|id| subset.keeps(id)).count();
            }
        }
        Ok(n)
    }

    /// The classifier's batches of one epoch, produced on a background thread.
    pub fn epoch(&self, cfg: &LoaderConfig, epoch: u64) -> Receiver<Result<Batch>> {
        self.epoch_with(cfg, epoch, assemble_clips)
    }

    /// The batches of one epoch, `assemble` turning each group of rows (already in epoch order)
    /// into a batch on the background thread. Every consumer shares the order, shuffling and
    /// hold-out logic; only what a batch holds differs.
    pub fn epoch_with<T, F>(&self, cfg: &LoaderConfig, epoch: u64, assemble: F) -> Receiver<Result<T>>
    where
        T: Send + 'static,
        F: Fn(&ShardMeta, &LoaderConfig, u64, Vec<RawRow>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = sync_channel(cfg.prefetch.max(1));
        let (set, cfg) = (self.clone(), cfg.clone());
        std::thread::spawn(move || {
            let emit = |rows: Vec<RawRow>| -> Result<bool> { Ok(tx.send(Ok(assemble(&set.meta, &cfg, epoch, rows)?)).is_ok()) };
            if let Err(e) = set.produce(&cfg, epoch, &emit) {
                let _ = tx.send(Err(e));
            }
        });
        rx
    }

    fn produce(&self, cfg: &LoaderConfig, epoch: u64, emit: &dyn Fn(Vec<RawRow>) -> Result<bool>) -> Result<()> {
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        let mut rng = Rng::derive(&[cfg.seed, epoch, 1]);
        if cfg.train {
            rng.shuffle(&mut order);
        }
        let buffer_cap = if cfg.train { cfg.shuffle_buffer.max(1) } else { 1 };
        let mut buffer: Vec<RawRow> = Vec::new();
        let mut pending: Vec<RawRow> = Vec::new();
        let mut readers: Vec<Option<ShardReader>> = self.files.iter().map(|_| None).collect();
        let flush = |pending: &mut Vec<RawRow>, force: bool| -> Result<bool> {
            if pending.len() >= cfg.batch_size || (force && !pending.is_empty()) {
                return emit(std::mem::take(pending));
            }
            Ok(true)
        };
        for gi in order {
            let (fi, g, _) = self.groups[gi];
            if readers[fi].is_none() {
                readers[fi] = Some(ShardReader::open(&self.files[fi])?);
            }
            let reader = readers[fi].as_ref().expect("opened above");
            let batch = reader.read_row_group(g, Some(&[col::CLIP_ID, col::LABEL, col::AUDIO, col::FRAMES, col::SEGMENT_LABELS]))?;
            for row in raw_rows(&batch, self.meta.classes.len()).with_context(|| format!("shard {}, row group {g}", self.files[fi].display()))? {
                if cfg.subset.keeps(&row.clip_id) {
                    buffer.push(row);
                }
                while buffer.len() >= buffer_cap {
                    let i = if cfg.train { rng.below(buffer.len()) } else { 0 };
                    pending.push(if cfg.train { buffer.swap_remove(i) } else { buffer.remove(0) });
                    if !flush(&mut pending, false)? {
                        return Ok(());
                    }
                }
            }
        }
        while !buffer.is_empty() {
            let i = if cfg.train { rng.below(buffer.len()) } else { 0 };
            pending.push(if cfg.train { buffer.swap_remove(i) } else { buffer.remove(0) });
            if !flush(&mut pending, false)? {
                return Ok(());
            }
        }
        if !cfg.drop_last {
            flush(&mut pending, true)?;
        }
        Ok(())
    }
}

/// What makes two shards' rows incompatible, if anything (said as "has other X").
fn mismatch(a: &ShardMeta, b: &ShardMeta) -> Option<String> {
    if a.classes != b.classes {
        return Some(format!("has another class list ({} classes: {:?}...)", b.classes.len(), &b.classes[..b.classes.len().min(3)]));
    }
    if a.audio_shape != b.audio_shape {
        return Some(format!("has another audio shape ({:?}, not {:?})", b.audio_shape, a.audio_shape));
    }
    if a.preset != b.preset {
        return Some(format!("was made with another preset (audio {:?}, frames {:?})", b.preset.audio.name, b.preset.frames));
    }
    None
}

/// Decodes one frame's JPEG bytes.
pub fn decode_jpeg(clip_id: &str, index: usize, bytes: &[u8]) -> Result<image::RgbImage> {
    Ok(image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).with_context(|| format!("clip {clip_id}: frame {index}"))?.to_rgb8())
}

/// The classifier's batch: T frames per clip, the audio matrix (cropped where the preset asks).
fn assemble_clips(meta: &ShardMeta, cfg: &LoaderConfig, epoch: u64, rows: Vec<RawRow>) -> Result<Batch> {
    let [f, t_full] = meta.audio_shape;
    let t = cfg.audio_crop.map_or(t_full, |c| c.min(t_full));
    let s = cfg.image_size;
    let per_frame = (3 * s * s) as usize;
    let items: Vec<Result<(Vec<f32>, Vec<f32>)>> = rows
        .par_iter()
        .map(|r| {
            let mut rng = Rng::derive(&[cfg.seed, epoch, fnv1a(&r.clip_id)]);
            let start = if t < t_full {
                if cfg.train {
                    rng.below(t_full - t + 1)
                } else {
                    (t_full - t) / 2
                }
            } else {
                0
            };
            let mut audio = Vec::with_capacity(f * t);
            for fi in 0..f {
                audio.extend_from_slice(&r.audio[fi * t_full + start..fi * t_full + start + t]);
            }
            if r.frames.is_empty() {
                bail!("clip {} has no frames", r.clip_id);
            }
            let picks = select_frames(r.frames.len(), cfg.frames, cfg.train, &mut rng);
            let mut frames = vec![0f32; cfg.frames * per_frame];
            for (k, &p) in picks.iter().enumerate() {
                let img = decode_jpeg(&r.clip_id, p, &r.frames[p])?;
                transform(&img, s, cfg.train, &mut rng, &mut frames[k * per_frame..(k + 1) * per_frame]);
            }
            Ok((audio, frames))
        })
        .collect();
    let mut batch = Batch {
        audio: Vec::with_capacity(rows.len() * f * t),
        audio_shape: [f, t],
        frames: Vec::with_capacity(rows.len() * cfg.frames * per_frame),
        labels: rows.iter().map(|r| r.label).collect(),
        clip_ids: rows.iter().map(|r| r.clip_id.clone()).collect(),
    };
    for item in items {
        let (a, fr) = item?;
        batch.audio.extend(a);
        batch.frames.extend(fr);
    }
    Ok(batch)
}

/// One shard row as read, before decoding.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub clip_id: String,
    pub label: i64,
    /// The audio matrix, row-major `ShardMeta::audio_shape`.
    pub audio: Vec<f32>,
    /// JPEG bytes, in time order.
    pub frames: Vec<Vec<u8>>,
    /// Per-second labels (AVE), when the shard has them.
    pub segment_labels: Option<Vec<i64>>,
}

/// The rows of a record batch; a null or out-of-range label (not in `0..classes`), a null audio
/// matrix or frame list is an error naming the clip.
fn raw_rows(batch: &datasets::arrow::array::RecordBatch, classes: usize) -> Result<Vec<RawRow>> {
    let get = |name: &str| batch.column_by_name(name).with_context(|| format!("column {name}"));
    let ids = get(col::CLIP_ID)?.as_any().downcast_ref::<StringArray>().context("clip_id type")?;
    let labels = get(col::LABEL)?.as_any().downcast_ref::<Int64Array>().context("label type")?;
    let audio = get(col::AUDIO)?.as_any().downcast_ref::<FixedSizeListArray>().context("audio type")?;
    let values = audio.values().as_any().downcast_ref::<Float32Array>().context("audio values")?;
    let frames = get(col::FRAMES)?.as_any().downcast_ref::<ListArray>().context("frames type")?;
    let structs = frames.values().as_any().downcast_ref::<StructArray>().context("frame structs")?;
    let bytes = structs.column(0).as_any().downcast_ref::<BinaryArray>().context("frame bytes")?;
    let segments = batch.column_by_name(col::SEGMENT_LABELS).and_then(|c| c.as_any().downcast_ref::<ListArray>());
    let segment_labels = |i: usize| -> Option<Vec<i64>> {
        let s = segments.filter(|s| s.is_valid(i))?;
        Some(s.value(i).as_any().downcast_ref::<Int64Array>()?.values().to_vec())
    };
    let n = audio.value_length() as usize;
    anyhow::ensure!(values.len() >= n * batch.num_rows(), "audio column shorter than its rows");
    for i in 0..batch.num_rows() {
        let id = if ids.is_valid(i) { ids.value(i) } else { "<null clip id>" };
        anyhow::ensure!(labels.is_valid(i), "clip {id}: label is null");
        let label = labels.value(i);
        anyhow::ensure!(
            (0..classes as i64).contains(&label),
            "clip {id}: label {label} out of range (the shard has {classes} classes: 0..{})",
            classes.saturating_sub(1)
        );
        anyhow::ensure!(ids.is_valid(i), "row {i}: clip id is null");
        anyhow::ensure!(audio.is_valid(i), "clip {id}: audio is null");
        anyhow::ensure!(frames.is_valid(i), "clip {id}: frames are null");
    }
    let offsets = frames.value_offsets();
    Ok((0..batch.num_rows())
        .map(|i| RawRow {
            clip_id: ids.value(i).to_owned(),
            label: labels.value(i),
            audio: values.values()[i * n..(i + 1) * n].to_vec(),
            frames: (offsets[i] as usize..offsets[i + 1] as usize).map(|j| bytes.value(j).to_vec()).collect(),
            segment_labels: segment_labels(i),
        })
        .collect())
}
