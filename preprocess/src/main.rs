//! `preprocess` (run as `cargo xtask prepare-datasets`): raw datasets -> Parquet shards.
//! Thin glue over the library: parse flags, find datasets, run the pipeline, print a summary.
//! Exit status: 0 all clips processed, 2 some clips failed (see the summary and index.json),
//! 1 the run itself failed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use datasets::catalog::SplitRule;
use datasets::{AudioPreset, DatasetKind, Preset};
use preprocess::clip::ClipOptions;
use preprocess::pipeline::{prepare, Part, PrepareOptions, Summary};
use preprocess::synthetic::{generate, generate_ave, SyntheticAveConfig, SyntheticConfig};

/// The synthetic corpora `prepare-datasets` can generate when no `--raw` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SyntheticKind {
    /// 2-s clips of 6 classes, imbalanced (the OGM-GE classification demo): `<out>/synthetic`.
    Classification,
    /// 10-s clips with one event over known seconds, in AVE's raw layout (`trainer localize`): `<out>/ave`.
    Ave,
    /// The harder AVE-shaped corpus (fainter cues, 1-4 s events, one-modality distractors), on
    /// which localizers and methods differ: `<out>/ave` (use its own --out).
    AveHard,
}

#[derive(Parser, Debug)]
#[command(
    name = "prepare-datasets",
    version,
    about = "Turn raw CREMA-D / Kinetics-Sounds / VGGSound / AVE downloads into Parquet shards. Without --raw, generate and prepare the synthetic corpus."
)]
struct Cli {
    /// Raw root holding dataset folders (CREMA-D/, kinetics-sounds/, vggsound/, AVE_Dataset/ ...).
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Output root: shards go to <out>/<dataset>/<split>/.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Only these datasets (comma-separated: cremad, kinetics-sounds, vggsound, ave, synthetic).
    #[arg(long, value_delimiter = ',')]
    datasets: Vec<String>,
    /// Parallel clips (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Process only shards k with k % n == i, for array jobs ("i/n"); rerun with --merge at the end.
    #[arg(long)]
    part: Option<Part>,
    /// Process nothing: verify every shard by hash and write index.json (after all --part runs).
    #[arg(long)]
    merge: bool,
    /// With --merge: the array's part count (the n of --part i/n), so an unfinished part is named.
    #[arg(long, requires = "merge")]
    parts: Option<usize>,
    /// Clips per shard file.
    #[arg(long, default_value_t = 256)]
    clips_per_shard: usize,
    /// Rows per Parquet row group (the reader's streaming unit).
    #[arg(long, default_value_t = 16)]
    rows_per_group: usize,
    /// Audio preset instead of the dataset's default (cremad-stft, vggsound-stft, kaldi-fbank, psd-1004, synthetic-stft).
    #[arg(long)]
    audio_preset: Option<String>,
    /// Override the preset's sample rate (Hz).
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Override the preset's tile/cut length (seconds).
    #[arg(long)]
    tile_seconds: Option<f64>,
    /// Shorter side of stored frames, pixels.
    #[arg(long)]
    short_side: Option<u32>,
    /// JPEG quality of stored frames (1-100).
    #[arg(long)]
    jpeg_quality: Option<u8>,
    /// Frames kept per second of video.
    #[arg(long)]
    fps: Option<f64>,
    /// At most this many frames per clip.
    #[arg(long)]
    max_frames: Option<u32>,
    /// The train/test split: `published` (the reference's lists), or `actor-disjoint` (CREMA-D:
    /// every actor on one side; shards go to <out>/cremad-actor-disjoint/).
    #[arg(long, default_value = "published", value_parser = parse_split)]
    split: SplitRule,
    /// Keep clips whose streams have undecodable packets instead of failing them.
    #[arg(long)]
    tolerate_decode_errors: bool,
    /// Which synthetic corpus to generate and prepare when --raw is not given.
    #[arg(long, value_enum, default_value_t = SyntheticKind::Classification)]
    synthetic: SyntheticKind,
    /// Where the synthetic corpus is generated when --raw is not given.
    #[arg(long, default_value = "raw-synthetic")]
    synthetic_raw: PathBuf,
    /// Seed of the synthetic corpus.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Synthetic training clips per class (default: 60 classification, 40 ave).
    #[arg(long)]
    synthetic_train_per_class: Option<usize>,
    /// Synthetic test clips per class (default: 20 classification, 12 ave).
    #[arg(long)]
    synthetic_test_per_class: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_split(s: &str) -> Result<SplitRule, String> {
    SplitRule::from_name(s).ok_or_else(|| format!("unknown split {s:?} (published, actor-disjoint)"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn preset_for(cli: &Cli, kind: DatasetKind) -> Result<Preset> {
    let mut p = kind.default_preset();
    if let Some(name) = &cli.audio_preset {
        p.audio = AudioPreset::by_name(name).with_context(|| format!("unknown audio preset {name:?}; known: {}", AudioPreset::NAMES.join(", ")))?;
    }
    if let Some(r) = cli.sample_rate {
        p.audio.sample_rate = Some(r);
    }
    if let Some(s) = cli.tile_seconds {
        p.audio.tile_to_seconds = Some(s);
    }
    if kind == DatasetKind::Ave && cli.raw.is_none() {
        p.frames.short_side = SyntheticAveConfig::default().size; // the generated frames' own size
    }
    if let Some(s) = cli.short_side {
        p.frames.short_side = s;
    }
    if let Some(q) = cli.jpeg_quality {
        if !(1..=100).contains(&q) {
            bail!("--jpeg-quality must be 1..=100");
        }
        p.frames.jpeg_quality = q;
    }
    if let Some(f) = cli.fps {
        p.frames.fps = f;
    }
    if let Some(m) = cli.max_frames {
        p.frames.max_frames = Some(m);
    }
    Ok(p)
}

fn run() -> Result<bool> {
    let cli = Cli::parse();
    let wanted: Vec<DatasetKind> =
        cli.datasets.iter().map(|n| DatasetKind::from_name(n).with_context(|| format!("unknown dataset {n:?}"))).collect::<Result<_>>()?;
    let mut found: Vec<(DatasetKind, PathBuf)> = Vec::new();
    match &cli.raw {
        Some(raw) => {
            if !raw.is_dir() {
                bail!("--raw {}: not a directory", raw.display());
            }
            for kind in DatasetKind::ALL {
                if let Some(root) = kind.find_root(raw) {
                    found.push((kind, root));
                }
            }
            if found.is_empty() {
                bail!("no dataset found under {} (expected folders like CREMA-D/, kinetics-sounds/, vggsound/, AVE_Dataset/)", raw.display());
            }
        }
        None => found.push(generate_synthetic(&cli)?),
    }
    if !wanted.is_empty() {
        found.retain(|(k, _)| wanted.contains(k));
        if found.is_empty() {
            bail!("none of the requested datasets was found");
        }
    }
    let jobs = cli.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut clean = true;
    for (kind, root) in found {
        let catalog = kind.scan_with(&root, cli.split).with_context(|| format!("scanning {kind} at {}", root.display()))?;
        eprintln!(
            "{kind}: {} clips found, {} listed but missing, {} manifest lines rejected ({})",
            catalog.clips.len(),
            catalog.missing.len(),
            catalog.rejected.len(),
            root.display()
        );
        let opts = PrepareOptions {
            out: cli.out.clone(),
            jobs,
            part: cli.part,
            merge_only: cli.merge,
            parts: cli.parts,
            clips_per_shard: cli.clips_per_shard,
            writer: datasets::shard::WriterOptions { rows_per_group: cli.rows_per_group, ..Default::default() },
            clip: ClipOptions { tolerate_decode_errors: cli.tolerate_decode_errors },
            progress: !cli.quiet,
        };
        let preset = preset_for(&cli, kind)?;
        let summary = prepare(&catalog, &preset, &opts).with_context(|| format!("preparing {kind}"))?;
        clean &= print_summary(kind, &cli.out, &summary);
    }
    Ok(clean)
}

/// Generates the synthetic corpus `--synthetic` names (kept if already there); where it is.
fn generate_synthetic(cli: &Cli) -> Result<(DatasetKind, PathBuf)> {
    let t = std::time::Instant::now();
    let (kind, root, g) = match cli.synthetic {
        SyntheticKind::Ave | SyntheticKind::AveHard => {
            let (root, d) = match cli.synthetic {
                SyntheticKind::Ave => (cli.synthetic_raw.join("AVE_Dataset"), SyntheticAveConfig::default()),
                _ => (cli.synthetic_raw.join("ave-hard").join("AVE_Dataset"), SyntheticAveConfig::hard()),
            };
            let train_per_class = cli.synthetic_train_per_class.unwrap_or(d.train_per_class);
            let test_per_class = cli.synthetic_test_per_class.unwrap_or(d.test_per_class);
            let cfg = SyntheticAveConfig { seed: cli.seed, train_per_class, test_per_class, ..d };
            (DatasetKind::Ave, root.clone(), generate_ave(&root, &cfg))
        }
        SyntheticKind::Classification => {
            let root = cli.synthetic_raw.join("synthetic");
            let d = SyntheticConfig::default();
            let train_per_class = cli.synthetic_train_per_class.unwrap_or(d.train_per_class);
            let test_per_class = cli.synthetic_test_per_class.unwrap_or(d.test_per_class);
            let cfg = SyntheticConfig { seed: cli.seed, train_per_class, test_per_class, ..d };
            (DatasetKind::Synthetic, root.clone(), generate(&root, &cfg))
        }
    };
    let g = g.map_err(anyhow::Error::msg).with_context(|| format!("generating the synthetic corpus in {}", root.display()))?;
    let how = if g.written { format!("generated in {:.1} s", t.elapsed().as_secs_f64()) } else { "already there".into() };
    eprintln!("synthetic {kind} corpus: {} clips in {} ({how})", g.clips, root.display());
    Ok((kind, root))
}

/// Prints what happened; returns false when the dataset has failed clips.
fn print_summary(kind: DatasetKind, out: &std::path::Path, s: &Summary) -> bool {
    let folder = s.index.as_ref().and_then(|i| i.split.as_ref()).map_or(kind.name().to_owned(), |r| format!("{kind}-{}", r.rule.name()));
    let rate = |n: f64| if s.wall_seconds > 0.0 { n / s.wall_seconds } else { 0.0 };
    eprintln!(
        "{kind}: {} shards ({} written, {} already done and verified); {} clips processed in {:.1} s = {:.1} clips/s, {:.1} s of media per s; {} failed in this run",
        s.shards_total,
        s.shards_written,
        s.shards_verified,
        s.clips_processed,
        s.wall_seconds,
        rate(s.clips_processed as f64),
        rate(s.media_seconds),
        s.clips_failed_now
    );
    let Some(index) = &s.index else {
        eprintln!("{kind}: not every shard is finished yet (another --part still runs?); index.json not written");
        return true;
    };
    for (split, c) in &index.splits {
        eprintln!("  {split}: {} clips in {} shards, {} missing, {} failed", c.clips, c.shards, c.missing, c.failed);
    }
    for f in index.failed.iter().take(20) {
        eprintln!("  FAILED {} ({}): {}", f.clip_id, f.source_path, f.reason);
    }
    if index.failed.len() > 20 {
        eprintln!("  ... and {} more failures", index.failed.len() - 20);
    }
    if let Some(split) = s.index.as_ref().and_then(|i| i.split.as_ref()) {
        let sides: Vec<String> = split.actors.iter().map(|(k, a)| format!("{k} {} actors", a.len())).collect();
        eprintln!("{kind}: split {} ({})", split.rule.name(), sides.join(", "));
    }
    eprintln!("{kind}: index at {}", out.join(folder).join("index.json").display());
    index.failed.is_empty()
}
