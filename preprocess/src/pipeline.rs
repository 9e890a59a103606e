//! The run: plan shards deterministically, skip the ones already finished (verified by hash, not
//! by name), process the rest in parallel with bounded memory, then write `index.json` and the
//! dataset card once every shard exists.
//!
//! Resumption: each finished shard gets a state file (`.state/<shard>.json`) holding the plan's
//! fingerprint, the shard's hash and its failed clips, written after the shard's atomic rename.
//! A kill at any moment leaves finished shards (with state), at most hidden temporary files, and
//! nothing half-visible; a rerun redoes exactly the shards without a valid state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use datasets::catalog::{Catalog, ClipEntry};
use datasets::durable::write_atomic;
use datasets::index::{DatasetIndex, Failed, IndexedShard, INDEX_FILE};
use datasets::preset::AudioTransform;
use datasets::schema::ShardMeta;
use datasets::shard::{file_sha256, shard_file_name, ClipRecord, ShardInfo, ShardWriter, WriterOptions};
use datasets::{card, Preset, Split};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clip::{process_clip, ClipOptions};

/// A share of the shards for one machine of an array job: shards with `index % count == part`.
pub use datasets::part::Part;

/// How to run.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Output root; the dataset goes to `<out>/<dataset>/`.
    pub out: PathBuf,
    pub jobs: usize,
    pub part: Option<Part>,
    /// Do no processing: verify every shard and write the index (the merge step of an array job).
    pub merge_only: bool,
    /// With `merge_only`: the array's part count, so an unfinished part is named in the error.
    pub parts: Option<usize>,
    pub clips_per_shard: usize,
    pub writer: WriterOptions,
    pub clip: ClipOptions,
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub shards_total: usize,
    pub shards_written: usize,
    pub shards_verified: usize,
    pub clips_processed: usize,
    pub clips_failed_now: usize,
    pub media_seconds: f64,
    pub wall_seconds: f64,
    /// Present when every shard exists and the index was written.
    pub index: Option<DatasetIndex>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Data(#[from] datasets::Error),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct ShardState {
    fingerprint: String,
    shard: ShardInfo,
    failed: Vec<Failed>,
}

struct PlannedShard<'a> {
    split: Split,
    name: String,
    clips: Vec<&'a ClipEntry>,
    /// Each clip's video file size in bytes (0 when missing): the work estimate for scheduling.
    sizes: Vec<u64>,
    fingerprint: String,
}

fn state_path(ds_out: &Path, name: &str) -> PathBuf {
    ds_out.join(".state").join(format!("{}.json", name.replace('/', "__")))
}

/// The audio matrix shape every row of this preset has.
pub fn fixed_shape(preset: &Preset) -> Result<([usize; 2], [&'static str; 2]), PipelineError> {
    let variable = matches!(preset.audio.transform, AudioTransform::LogStft { .. } | AudioTransform::LogPsd { .. });
    if variable && preset.audio.fixed_samples().is_none() {
        return Err(PipelineError::Invalid(format!(
            "preset {}: STFT/PSD presets need a sample rate and tile_to_seconds so every row has one shape",
            preset.audio.name
        )));
    }
    Ok(preset.audio.output_shape(0, preset.audio.sample_rate.unwrap_or(16000)))
}

fn plan<'a>(catalog: &'a Catalog, preset: &Preset, opts: &PrepareOptions) -> Vec<PlannedShard<'a>> {
    let preset_json = serde_json::to_string(preset).expect("preset serialises");
    let mut shards = Vec::new();
    for split in Split::ALL {
        let mut clips: Vec<&ClipEntry> = catalog.clips.iter().filter(|c| c.split == split).collect();
        clips.sort_by(|a, b| a.clip_id.cmp(&b.clip_id));
        let per = opts.clips_per_shard.max(1);
        let count = clips.len().div_ceil(per);
        for (k, chunk) in clips.chunks(per).enumerate() {
            let mut h = Sha256::new();
            h.update(preset_json.as_bytes());
            h.update(format!("{:?}|{}", opts.writer.rows_per_group, opts.writer.zstd_level));
            h.update(format!("{:?}", opts.clip.tolerate_decode_errors));
            let sizes: Vec<u64> = chunk.iter().map(|c| std::fs::metadata(catalog.root.join(&c.video)).map_or(0, |m| m.len())).collect();
            for (c, size) in chunk.iter().zip(&sizes) {
                h.update(format!("{}|{}|{}|{:?}|{size}\n", c.clip_id, c.label, c.video.display(), c.audio));
            }
            shards.push(PlannedShard { split, name: shard_file_name(split, k, count), clips: chunk.to_vec(), sizes, fingerprint: hex::encode(h.finalize()) });
        }
    }
    shards
}

/// The shard's state when it is finished and intact: state present, same plan, same bytes.
fn verified_state(ds_out: &Path, shard: &PlannedShard) -> Option<ShardState> {
    let bytes = std::fs::read(state_path(ds_out, &shard.name)).ok()?;
    let state: ShardState = serde_json::from_slice(&bytes).ok()?;
    let path = ds_out.join(&shard.name);
    (state.fingerprint == shard.fingerprint && file_sha256(&path).ok()? == state.shard.sha256).then_some(state)
}

/// Prepares one dataset.
pub fn prepare(catalog: &Catalog, preset: &Preset, opts: &PrepareOptions) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    let (shape, dims) = fixed_shape(preset)?;
    let ds_out = opts.out.join(catalog.out_name());
    let shards = plan(catalog, preset, opts);
    let mine = |k: usize| opts.part.is_none_or(|p| p.keeps(k));
    let mut summary = Summary { shards_total: shards.len(), ..Summary::default() };

    // Each finished shard is hashed once per run: its verified state is kept for the index.
    let mut states: Vec<Option<ShardState>> = shards.iter().map(|s| verified_state(&ds_out, s)).collect();
    summary.shards_verified = states.iter().filter(|s| s.is_some()).count();
    let todo: Vec<usize> = (0..shards.len()).filter(|&k| states[k].is_none() && mine(k) && !opts.merge_only).collect();
    let clips_todo: usize = todo.iter().map(|&k| shards[k].clips.len()).sum();
    let bar = if opts.progress { ProgressBar::new(clips_todo as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} clips {per_sec} eta {eta}").expect("valid template"));
    bar.set_prefix(catalog.dataset.name());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs.max(1)).build().map_err(|e| PipelineError::Invalid(format!("thread pool: {e}")))?;
    let media_ms = AtomicUsize::new(0);
    for k in todo {
        let shard = &shards[k];
        let meta = ShardMeta {
            dataset: catalog.dataset,
            split: shard.split,
            preset: preset.clone(),
            classes: catalog.classes.clone(),
            audio_shape: shape,
            audio_dims: dims.map(String::from),
        };
        let mut writer = ShardWriter::create(&ds_out, &shard.name, &meta, opts.writer)?;
        let mut failed = Vec::new();
        // Rows reach the writer one at a time in clip order (so the bytes do not depend on
        // timing), each as soon as it and every row before it are done: the encoding overlaps
        // the workers' decoding, and little of it is left when the last clip finishes. Clips are
        // queued in windows: bounded memory, at most two windows in flight or waiting. Each
        // window is queued largest file first, so the clips the shard ends on are small ones
        // and no core idles long at its end (the pool takes queued work in order).
        // A window is at least 16 clips (room to order by size), else two per worker.
        let window = (opts.jobs * 2).max(16);
        let clips = &shard.clips;
        let largest_first = |w: usize| {
            let mut order: Vec<usize> = (w * window..((w + 1) * window).min(clips.len())).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(shard.sizes[i]));
            order
        };
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<ClipRecord, String>)>();
        // Clips spawned and not yet started. A clip that starts with fewer than `jobs` behind it
        // (the shard's last, or workers ahead of the writer) may soon run while cores idle: its
        // video decoder gets a thread per worker, at most `TAIL_THREADS` (up to `jobs` such
        // clips run at once, and FFmpeg's frame threads gain little past a few).
        const TAIL_THREADS: usize = 4;
        let waiting = AtomicUsize::new(0);
        pool.in_place_scope(|scope| -> Result<(), PipelineError> {
            let mut queued_windows = 0;
            let spawn = |i: usize| {
                let (tx, c, media_ms, bar, waiting) = (tx.clone(), &clips[i], &media_ms, &bar, &waiting);
                waiting.fetch_add(1, Ordering::SeqCst);
                scope.spawn(move |_| {
                    let behind = waiting.fetch_sub(1, Ordering::SeqCst) - 1;
                    let threads = if behind < opts.jobs { opts.jobs.clamp(1, TAIL_THREADS) } else { 1 };
                    let r = process_clip(&catalog.root, c, preset, shape, opts.clip, threads);
                    if let Ok(rec) = &r {
                        media_ms.fetch_add((rec.provenance.duration_s * 1000.0) as usize, Ordering::Relaxed);
                    }
                    bar.inc(1);
                    let _ = tx.send((i, r)); // the receiver outlives the scope
                });
            };
            let mut done: BTreeMap<usize, Result<ClipRecord, String>> = BTreeMap::new();
            for next in 0..clips.len() {
                while queued_windows * window < clips.len() && queued_windows * window <= next + window {
                    largest_first(queued_windows).into_iter().for_each(spawn);
                    queued_windows += 1;
                }
                let r = loop {
                    if let Some(r) = done.remove(&next) {
                        break r;
                    }
                    let (i, r) = rx.recv().expect("a spawned clip always reports");
                    done.insert(i, r);
                };
                match r {
                    Ok(rec) => writer.write(std::slice::from_ref(&rec))?,
                    Err(reason) => {
                        let c = &clips[next];
                        tracing::warn!(clip = %c.clip_id, "{reason}");
                        failed.push(Failed { clip_id: c.clip_id.clone(), split: c.split, source_path: c.video.to_string_lossy().into_owned(), reason });
                        summary.clips_failed_now += 1;
                    }
                }
                summary.clips_processed += 1;
            }
            Ok(())
        })?;
        let info = writer.finish()?;
        let state = ShardState { fingerprint: shard.fingerprint.clone(), shard: info, failed };
        let json = serde_json::to_vec_pretty(&state).expect("state serialises");
        write_atomic(&state_path(&ds_out, &shard.name), &json)?;
        states[k] = Some(state);
        summary.shards_written += 1;
    }
    bar.finish_and_clear();
    summary.media_seconds = media_ms.load(Ordering::Relaxed) as f64 / 1000.0;

    // The index, once every shard is there (a part run writes it when it finishes the last one):
    // only shards still unknown (other parts' work) are checked again.
    for (state, s) in states.iter_mut().zip(&shards) {
        if state.is_none() {
            *state = verified_state(&ds_out, s);
        }
    }
    let incomplete = states.iter().filter(|s| s.is_none()).count();
    if incomplete == 0 {
        let mut index = DatasetIndex::new(catalog.dataset, preset.clone(), catalog.classes.clone());
        for (s, st) in shards.iter().zip(states.into_iter().flatten()) {
            index.shards.push(IndexedShard { split: s.split, info: st.shard });
            index.failed.extend(st.failed);
        }
        index.missing = catalog.missing.clone();
        index.rejected = catalog.rejected.clone();
        index.split = catalog.split_record();
        index.normalise();
        index.write(&ds_out.join(INDEX_FILE))?;
        write_atomic(&ds_out.join("README.md"), card::render(&index).as_bytes())?;
        summary.index = Some(index);
    } else if opts.merge_only {
        let unfinished: Vec<(usize, String)> = states.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(k, _)| (k, shards[k].name.clone())).collect();
        let hint = if opts.parts.is_some() { "re-run those parts" } else { "re-run the parts that hold them (--parts N names them)" };
        return Err(PipelineError::Invalid(format!(
            "{}: {incomplete} of {} shards are not finished: {}; {hint}, then merge again",
            catalog.dataset,
            shards.len(),
            datasets::part::describe_unfinished(opts.parts, &unfinished)
        )));
    }
    summary.wall_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
