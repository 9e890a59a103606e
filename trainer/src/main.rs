//! `cargo run -p trainer -- train|compare|probe|localize`: thin glue over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use trainer::arch::Arch;
use trainer::compare::{self, Arm, Part, Plan};
use trainer::config_file;
use trainer::localize::model::LocalizerHead;
use trainer::localize::{localize, LocalizeConfig};
use trainer::methods::Balance;
use trainer::methods::MethodSettings;
use trainer::model::{FusionKind, ModelPreset};
use trainer::optim::OptimizerKind;
use trainer::probe::{probe, ProbeConfig, Which};
use trainer::recipe::Recipe;
use trainer::train::{train, TrainConfig, TrainHead};

/// `train`'s defaults, where the flags take theirs from (written once, in `TrainConfig`).
static TRAIN: std::sync::LazyLock<TrainConfig> = std::sync::LazyLock::new(TrainConfig::default);
/// `localize`'s.
static LOCALIZE: std::sync::LazyLock<LocalizeConfig> = std::sync::LazyLock::new(LocalizeConfig::default);

#[derive(Parser)]
#[command(name = "trainer", version, about = "OGM-GE training on Parquet shards (Burn; Flex on CPU, LibTorch with --features tch, CUDA with --features cuda)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// GPU builds: the folder that keeps compiled kernels and autotune results between runs
    /// (default: `kernel-cache` beside the run folders, in --out). Only the first run on a machine
    /// compiles; copy the folder to another machine with the same GPU and driver to spare it that.
    #[arg(long, global = true, env = trainer::kernel_cache::ENV)]
    kernel_cache: Option<PathBuf>,
    /// Where to train: `auto`, `cpu`, `cuda`, `cuda:N`. LibTorch builds (`--features tch`) train
    /// on the CPU, or on a GPU with `tch-cuda` (auto: the first GPU if there is one); CUDA builds
    /// on the runtime's GPU; the default build on the CPU (Flex).
    #[arg(long, global = true, env = DEVICE_ENV, default_value = "auto")]
    device: String,
}

/// `--device` for the processes `compare --jobs` starts.
const DEVICE_ENV: &str = "OGMGE_DEVICE";

#[derive(Subcommand)]
enum Cmd {
    /// Train one run.
    Train(TrainArgs),
    /// Audio-visual event localization on AVE shards (AVGA or PSP head, with or without OGM-GE).
    Localize(LocalizeArgs),
    /// Train every combination of methods x optimisers x seeds and tabulate them (compare.md,
    /// compare.csv, compare.png); with no flags, the demo: `none` vs `ogm-ge`, 3 seeds, `tiny`
    /// model on the synthetic shards.
    Compare(CompareArgs),
    /// The paper's uni-modal evaluation: linear classifiers on a trained run's frozen encoders.
    Probe(ProbeArgs),
}

#[derive(Args)]
struct LocalizeArgs {
    /// An AVE shard folder (`cargo xtask prepare-datasets --raw ...`, or `--synthetic ave`).
    #[arg(long, default_value_os_t = LOCALIZE.data.clone())]
    data: PathBuf,
    /// Where run folders go.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = ModelPreset::Paper)]
    model: ModelPreset,
    #[arg(long, value_enum, default_value_t = Balance::OgmGe)]
    balance: Balance,
    #[command(flatten)]
    rule: RuleFlags,
    /// Epochs (AVGA: 300).
    #[arg(long, default_value_t = LOCALIZE.epochs)]
    epochs: usize,
    /// Clips per batch, each 10 segments (AVGA: 64).
    #[arg(long, default_value_t = LOCALIZE.batch_size)]
    batch_size: usize,
    /// Learning rate (AVGA: Adam at 1e-3).
    #[arg(long, default_value_t = LOCALIZE.lr)]
    lr: f64,
    /// The optimiser (AVGA: Adam), with PyTorch's semantics and defaults.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    optimizer: OptimizerKind,
    /// Weight decay (AVGA: none): L2 for SGD and Adam, decoupled for AdamW.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// SGD's momentum (PyTorch's default: none).
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    /// The head after the encoders: AVGA, or PSP (positive sample propagation and its AVPS loss).
    #[arg(long, value_enum, default_value_t = LocalizerHead::Avga)]
    head: LocalizerHead,
    /// Learning-rate step, epochs (default: the head's: AVGA steps every 15000 iterations, ~290
    /// epochs of AVE at batch 64; PSP every 60 epochs).
    #[arg(long)]
    lr_step: Option<usize>,
    /// Learning-rate factor at each step (default: the head's: AVGA 0.1, PSP 0.8).
    #[arg(long)]
    lr_gamma: Option<f64>,
    /// At most this many learning-rate steps (default: the head's: AVGA no limit, PSP 2).
    #[arg(long)]
    lr_decays: Option<usize>,
    /// PSP's pruning threshold of the normalised similarities (0.099, fully supervised).
    #[arg(long, default_value_t = trainer::localize::psp::PSP_THRESHOLD)]
    psp_threshold: f64,
    /// PSP's weight of the AVPS loss (lambda).
    #[arg(long, default_value_t = trainer::localize::psp::AVPS_WEIGHT)]
    avps_weight: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 1024)]
    shuffle_buffer: usize,
    #[command(flatten)]
    run: RunFlags,
    #[command(flatten)]
    recipe: RecipeFlag,
}

/// A published protocol to start from.
#[derive(Args, Clone)]
struct RecipeFlag {
    /// A recipe: a built-in protocol (`ogm-ge-cvpr2022`, `balancebenchmark`) or a TOML file
    /// (see trainer/recipes/); flags given here and --config win over it.
    #[arg(long, value_name = "NAME|PATH")]
    recipe: Option<String>,
}

/// A run's identity and continuation, shared by `train` and `localize`.
#[derive(Args, Clone)]
struct RunFlags {
    /// Run name (default: derived from the settings).
    #[arg(long)]
    name: Option<String>,
    /// Continue the run folder's last checkpoint (same settings), e.g. after a kill.
    #[arg(long)]
    resume: bool,
    /// A JSON config file (e.g. an earlier run's config.json); flags given here win over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The balancing rule's parameters, shared by `train`, `localize` and `demo`.
#[derive(Args, Clone)]
struct RuleFlags {
    /// OGM-GE's alpha.
    #[arg(long, default_value_t = TRAIN.alpha)]
    alpha: f64,
    /// First epoch (0-based, inclusive) of the modulation window.
    #[arg(long, default_value_t = TRAIN.modulation_start)]
    modulation_start: usize,
    /// Last epoch (inclusive) of the modulation window.
    #[arg(long, default_value_t = TRAIN.modulation_end)]
    modulation_end: usize,
}

#[derive(Args, Clone)]
struct Common {
    /// A dataset's shard folder (made by `cargo xtask prepare-datasets`).
    #[arg(long, default_value = "out/synthetic")]
    data: PathBuf,
    /// Where run folders go (compare: the comparison's folder, default `runs/compare`).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = FusionKind::Concat)]
    fusion: FusionKind,
    #[command(flatten)]
    rule: RuleFlags,
    /// Learning rate (train: 1e-3 as the reference; demo: 1e-2, for a tiny model in few epochs).
    #[arg(long)]
    lr: Option<f64>,
    /// Every method's own settings (`--opm-q-base`, `--pmr-momentum`, ...).
    #[command(flatten)]
    methods: MethodSettings,
    /// SGD's momentum.
    #[arg(long, default_value_t = TRAIN.momentum)]
    momentum: f64,
    /// Weight decay: L2 on the gradient for SGD and Adam, decoupled for AdamW.
    #[arg(long, default_value_t = TRAIN.weight_decay)]
    weight_decay: f64,
    /// StepLR step, epochs.
    #[arg(long, default_value_t = TRAIN.lr_step)]
    lr_step: usize,
    #[arg(long, default_value_t = TRAIN.lr_gamma)]
    lr_gamma: f64,
    /// Frames per clip, T (train: 3 as the reference; demo: 2, the synthetic clips' length in s).
    #[arg(long)]
    frames: Option<usize>,
    /// Fraction of train held out for model selection.
    #[arg(long, default_value_t = TRAIN.val_fraction)]
    val_fraction: f64,
    /// Select the model on the test split, as the reference does (not recommended).
    #[arg(long)]
    select_on_test: bool,
    /// Leave out each epoch's last training batch when it is short (BalanceBenchmark's loader).
    #[arg(long)]
    drop_last: bool,
    #[arg(long, default_value_t = TRAIN.shuffle_buffer)]
    shuffle_buffer: usize,
    #[command(flatten)]
    recipe: RecipeFlag,
}

#[derive(Args)]
struct TrainArgs {
    /// Which logits the loss trains: fused (the method), or audio / visual alone (the
    /// uni-modal ceiling: that encoder and its share of the classifier, with --balance none).
    #[arg(long, value_enum, default_value_t = TrainHead::Fused)]
    train_head: TrainHead,
    #[command(flatten)]
    common: Common,
    /// The optimiser, with PyTorch's semantics and defaults (betas 0.9/0.999, eps 1e-8).
    #[arg(long, value_enum, default_value_t = TRAIN.optimizer)]
    optimizer: OptimizerKind,
    #[arg(long, value_enum, default_value_t = TRAIN.model)]
    model: ModelPreset,
    /// The balancing method.
    #[arg(long, value_enum, default_value_t = TRAIN.balance)]
    balance: Balance,
    /// The architecture: the reference's (plain), TSN-AV, TSM-AV or TBN (TBN fuses with its
    /// binding head, `--fusion binding`, taken when --fusion is not given).
    #[arg(long, value_enum, default_value_t = Arch::Plain)]
    arch: Arch,
    #[arg(long, default_value_t = TRAIN.epochs)]
    epochs: usize,
    #[arg(long, default_value_t = TRAIN.batch_size)]
    batch_size: usize,
    #[arg(long, default_value_t = TRAIN.seed)]
    seed: u64,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Args)]
struct ProbeArgs {
    /// A finished (or, with `--checkpoint last`, any) `train` run folder.
    #[arg(long)]
    run: PathBuf,
    /// The weights probed: the epoch selected on validation, or the last one trained.
    #[arg(long, value_enum, default_value_t = Which::Best)]
    checkpoint: Which,
    /// Epochs of the linear classifiers over the frozen features.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Adam's learning rate for the linear classifiers.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    common: Common,
    /// The methods compared (the table's rows), comma-separated, e.g. `none,ogm,ogm-ge,ge-only`;
    /// `all`: the recipe's methods, or every method without a recipe [default: the recipe's
    /// methods, or none,ogm-ge]
    #[arg(long, value_delimiter = ',', value_parser = parse_methods)]
    methods: Vec<Methods>,
    /// Architectures, comma-separated (each method runs on each): plain, tsn, tsm, tbn.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Arch::Plain])]
    archs: Vec<Arch>,
    /// Seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 2])]
    seeds: Vec<u64>,
    /// Optimisers, comma-separated (each method runs under each).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [OptimizerKind::Sgd])]
    optimizers: Vec<OptimizerKind>,
    /// Also train audio alone and vision alone (the paper's uni-modal rows).
    #[arg(long)]
    ceilings: bool,
    /// Epochs per run: on the default corpus vision (the slow modality) is still learning at 20
    /// and GE's noise can hold it back that long; OGM-GE's gain is clear by 40.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, value_enum, default_value_t = ModelPreset::Tiny)]
    model: ModelPreset,
    /// Train only the runs at positions i, i+n, i+2n, ... of the fixed order (e.g. one array-job
    /// task each); then `--merge` tabulates.
    #[arg(long)]
    part: Option<Part>,
    /// Train nothing: tabulate the finished runs of every part.
    #[arg(long, conflicts_with = "part")]
    merge: bool,
    /// With --merge: the array's part count (the n of --part i/n), so an unfinished part is named.
    #[arg(long, requires = "merge")]
    parts: Option<usize>,
    /// Also fit linear probes on each run's frozen encoders (the paper's uni-modal protocol) and
    /// report their test accuracy; works with --merge on finished runs.
    #[arg(long)]
    probe: bool,
    /// Runs trained at once, each in its own process with its share of the cores (default: one
    /// per core on the CPU, where a small model keeps the cores busier that way; 1 with CUDA).
    #[arg(long)]
    jobs: Option<usize>,
}

/// One `--methods` entry.
#[derive(Clone, Copy, Debug)]
enum Methods {
    All,
    One(Balance),
}

fn parse_methods(s: &str) -> Result<Methods, String> {
    if s == "all" {
        return Ok(Methods::All);
    }
    <Balance as clap::ValueEnum>::from_str(s, false).map(Methods::One).map_err(|_| {
        let known: Vec<String> = Balance::ALL.iter().map(|b| b.name()).collect();
        format!("unknown method {s:?} (known: all, {})", known.join(", "))
    })
}

/// Defaults that differ between `train` (the reference's) and `compare` (tiny model, few epochs).
struct Defaults {
    lr: f64,
    frames: usize,
    out: PathBuf,
}

fn train_defaults() -> Defaults {
    Defaults { lr: TRAIN.lr, frames: TRAIN.frames, out: TRAIN.out.clone() }
}

fn compare_defaults() -> Defaults {
    Defaults { lr: 1e-2, frames: 2, out: "runs/compare".into() }
}

impl Common {
    /// The config the shared flags give under `d`'s defaults; what a subcommand sets itself
    /// (model, method, epochs, batch, seed, name, head, optimiser) it lays over this.
    fn config(&self, d: Defaults) -> TrainConfig {
        TrainConfig {
            data: self.data.clone(),
            out: self.out.clone().unwrap_or(d.out),
            fusion: self.fusion,
            arch: Arch::Plain,
            alpha: self.rule.alpha,
            modulation_start: self.rule.modulation_start,
            modulation_end: self.rule.modulation_end,
            lr: self.lr.unwrap_or(d.lr),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            lr_step: self.lr_step,
            lr_gamma: self.lr_gamma,
            frames: self.frames.unwrap_or(d.frames),
            val_fraction: self.val_fraction,
            select_on_test: self.select_on_test,
            shuffle_buffer: self.shuffle_buffer,
            methods: self.methods,
            drop_last: self.drop_last,
            recipe: None,
            ..TrainConfig::default()
        }
    }
}

/// A `train` run's name when neither `--name` nor the config file gives one.
fn default_train_name(cfg: &TrainConfig) -> String {
    let arch = if cfg.arch == Arch::Plain { String::new() } else { format!("{}-", cfg.arch.name()) };
    format!("{arch}{:?}-{:?}-{:?}{}-seed{}", cfg.model, cfg.fusion, cfg.balance, cfg.optimizer.name_suffix(), cfg.seed).to_lowercase()
}

/// `--methods` resolved: `all` is the recipe's methods (every method without a recipe); no
/// `--methods`, the recipe's methods or `none,ogm-ge`. Each method once, in the order given.
fn compare_methods(given: &[Methods], recipe: Option<&Recipe>) -> Vec<Balance> {
    let all = || recipe.and_then(|r| r.methods.clone()).unwrap_or_else(|| Balance::ALL.to_vec());
    let mut out: Vec<Balance> = Vec::new();
    if given.is_empty() {
        out = recipe.and_then(|r| r.methods.clone()).unwrap_or_else(|| vec![Balance::None, Balance::OgmGe]);
    }
    for m in given {
        let add = match *m {
            Methods::All => all(),
            Methods::One(b) => vec![b],
        };
        for b in add {
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the flag of config key `key` was given on the command line.
fn given(matches: &ArgMatches) -> impl Fn(&str) -> bool + '_ {
    move |key| matches!(matches.try_get_raw(key), Ok(Some(_))) && matches.value_source(key) == Some(ValueSource::CommandLine)
}

/// Lays `file` (if any) under the flags given explicitly in `matches`.
fn with_config_file<T: serde::Serialize + serde::de::DeserializeOwned>(cfg: T, file: Option<&PathBuf>, matches: &ArgMatches) -> Result<T> {
    match file {
        Some(f) => config_file::merge(&cfg, f, given(matches)),
        None => Ok(cfg),
    }
}

fn run() -> Result<()> {
    compare::exit_with_parent();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    trainer::device::prepare()?;
    let device = trainer::device::parse(&cli.device)?;
    tracing::info!("backend: {}, device {device:?}", trainer::device::BUILD);
    std::env::set_var(DEVICE_ENV, &cli.device);
    let sub = matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
    let flag = cli.kernel_cache.clone();
    // Before the first tensor: CubeCL reads its configuration once.
    let kernel_cache = |runs: &std::path::Path| -> Result<()> {
        if trainer::GPU_BACKEND {
            let dir = trainer::kernel_cache::configure(&flag.clone().unwrap_or_else(|| trainer::kernel_cache::default_dir(runs)))?;
            tracing::info!("kernel cache: {}", dir.display());
            // The processes `compare --jobs` starts share it.
            std::env::set_var(trainer::kernel_cache::ENV, &dir);
        }
        Ok(())
    };
    match cli.command {
        Cmd::Train(a) => {
            let name = a.run.name.clone().unwrap_or_default();
            let mut cfg = TrainConfig {
                name,
                model: a.model,
                balance: a.balance,
                epochs: a.epochs,
                batch_size: a.batch_size,
                seed: a.seed,
                train_head: a.train_head,
                optimizer: a.optimizer,
                ..a.common.config(train_defaults())
            };
            cfg.arch = a.arch;
            if sub.value_source("fusion") != Some(ValueSource::CommandLine) {
                cfg.fusion = a.arch.needs_fusion().unwrap_or(cfg.fusion);
            }
            if let Some(spec) = &a.common.recipe.recipe {
                cfg = Recipe::load(spec)?.apply_train(&cfg, &given(&sub))?;
            }
            let mut cfg = with_config_file(cfg, a.run.config.as_ref(), &sub)?;
            if cfg.name.is_empty() {
                // Derived from the settings the run will have, the config file's included.
                cfg.name = default_train_name(&cfg);
            }
            kernel_cache(&cfg.out)?;
            let s = train::<trainer::Backend>(&cfg, &device, true, a.run.resume)?;
            println!(
                "best epoch {}: test acc {:.4} (audio {:.4}, visual {:.4}), macro-F1 {:.4}, mAP {:.4}; run in {}",
                s.best_epoch,
                s.test.fused.accuracy,
                s.test.audio.accuracy,
                s.test.visual.accuracy,
                s.test.fused.macro_f1,
                s.test.fused.map,
                s.run_dir.display()
            );
        }
        Cmd::Localize(a) => {
            let (lr_step, lr_gamma, lr_decays) = LocalizeConfig::head_schedule(a.head);
            let cfg = LocalizeConfig {
                data: a.data,
                out: a.out,
                name: a.run.name.clone().unwrap_or_default(),
                model: a.model,
                balance: a.balance,
                alpha: a.rule.alpha,
                modulation_start: a.rule.modulation_start,
                modulation_end: a.rule.modulation_end,
                epochs: a.epochs,
                batch_size: a.batch_size,
                lr: a.lr,
                lr_step: a.lr_step.unwrap_or(lr_step),
                lr_gamma: a.lr_gamma.unwrap_or(lr_gamma),
                lr_decays: a.lr_decays.or(lr_decays),
                seed: a.seed,
                shuffle_buffer: a.shuffle_buffer,
                optimizer: a.optimizer,
                weight_decay: a.weight_decay,
                momentum: a.momentum,
                head: a.head,
                psp_threshold: a.psp_threshold,
                avps_weight: a.avps_weight,
            };
            let cfg = match &a.recipe.recipe {
                Some(spec) => Recipe::load(spec)?.apply_localize(&cfg, &given(&sub))?,
                None => cfg,
            };
            let mut cfg = with_config_file(cfg, a.run.config.as_ref(), &sub)?;
            if cfg.name.is_empty() {
                let head = if cfg.head == LocalizerHead::Avga { String::new() } else { format!("{:?}-", cfg.head) };
                cfg.name = format!("localize-{head}{:?}-{:?}-seed{}", cfg.model, cfg.balance, cfg.seed).to_lowercase();
            }
            kernel_cache(&cfg.out)?;
            let s = localize::<trainer::Backend>(&cfg, &device, true, a.run.resume)?;
            let t = s.test;
            println!(
                "best epoch {}: test segment accuracy {:.4} (event {:.4}, background {:.4}; audio head {:.4}, visual head {:.4}) over {} segments; run in {}",
                s.best_epoch,
                t.fused.all,
                t.fused.event,
                t.fused.background,
                t.audio.all,
                t.visual.all,
                t.segments,
                s.run_dir.display()
            );
        }
        Cmd::Probe(a) => {
            let cfg = ProbeConfig { run: a.run, checkpoint: a.checkpoint, epochs: a.epochs, lr: a.lr, seed: a.seed };
            kernel_cache(cfg.run.parent().unwrap_or(std::path::Path::new(".")))?;
            let r = probe::<trainer::Backend>(&cfg, &device)?;
            println!(
                "linear probes of {} (epoch {}, {} fit / {} test clips): audio encoder {:.4} (joint model's audio head {:.4}), visual encoder {:.4} (visual head {:.4}); written to probe.json",
                cfg.run.display(),
                r.epoch,
                r.fit_clips,
                r.test_clips,
                r.audio.test.accuracy,
                r.audio.joint_head_test.accuracy,
                r.visual.test.accuracy,
                r.visual.joint_head_test.accuracy
            );
        }
        Cmd::Compare(a) => {
            let recipe = a.common.recipe.recipe.as_deref().map(Recipe::load).transpose()?;
            let given = given(&sub);
            let mut template = TrainConfig {
                name: String::new(),
                model: a.model,
                balance: Balance::None,
                epochs: a.epochs,
                batch_size: a.batch_size,
                seed: 0,
                train_head: TrainHead::Fused,
                optimizer: OptimizerKind::Sgd,
                ..a.common.config(compare_defaults())
            };
            let mut optimizers = a.optimizers.clone();
            if let Some(r) = &recipe {
                template = r.apply_common(&template, &given)?;
                if r.train.contains_key("optimizer") && !given("optimizers") {
                    optimizers = vec![template.optimizer];
                }
            }
            let methods = compare_methods(&a.methods, recipe.as_ref());
            let mut arms: Vec<Arm> = a.archs.iter().flat_map(|&arch| methods.iter().map(move |&m| Arm::on(arch, m))).collect();
            if a.ceilings {
                arms.extend(a.archs.iter().flat_map(|&arch| Arm::ceilings(arch)));
            }
            let mut per_method = std::collections::BTreeMap::new();
            if let Some(r) = &recipe {
                for arm in &arms {
                    let base = TrainConfig { balance: arm.balance, ..template.clone() };
                    per_method.insert(arm.balance, r.apply_method(&base, arm.balance, &given)?);
                }
            }
            let plan = Plan { arms, optimizers, seeds: a.seeds, template, per_method };
            plan.validate()?;
            kernel_cache(&plan.template.out)?;
            if !a.merge {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let jobs = a.jobs.unwrap_or(if cfg!(feature = "cuda") { 1 } else { cores }).clamp(1, plan.share(a.part).len().max(1));
                if jobs == 1 {
                    compare::run_share::<trainer::Backend>(&plan, a.part, &device, true)?;
                } else {
                    let exe = std::env::current_exe().context("locating the trainer binary")?;
                    compare::run_share_in_processes(&plan, a.part, jobs, (cores / jobs).max(1), &exe, true)?;
                }
            }
            if a.merge {
                // Before probes and tables: the error names the parts to re-run.
                compare::collect(&plan, a.parts)?;
            }
            if a.part.is_some() {
                println!("part done; when every part is, tabulate with the same flags and --merge instead of --part");
            } else {
                let probes = if a.probe { compare::probe_runs::<trainer::Backend>(&plan, &compare::default_probe(), &device, true)? } else { Vec::new() };
                let (_, md) = compare::merge(&plan, &probes)?;
                println!("{}", std::fs::read_to_string(&md)?);
                println!("written: {} (and compare.csv, compare.png beside it)", md.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn methods_all_is_the_recipes_list_or_every_method() {
        let bb = Recipe::load("balancebenchmark").unwrap();
        let listed = bb.methods.clone().unwrap();
        let one = |b| Methods::One(b);
        let cases: [(&[Methods], Option<&Recipe>, Vec<Balance>); 5] = [
            (&[], None, vec![Balance::None, Balance::OgmGe]),
            (&[], Some(&bb), listed.clone()),
            (&[Methods::All], Some(&bb), listed.clone()),
            (&[Methods::All], None, Balance::ALL.to_vec()),
            (&[one(Balance::Ogm), Methods::All, one(Balance::Ogm)], Some(&bb), [vec![Balance::Ogm], listed].concat()),
        ];
        for (given, recipe, want) in cases {
            assert_eq!(compare_methods(given, recipe), want, "{given:?}");
        }
    }
}
