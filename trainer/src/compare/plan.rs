//! The plan of a comparison: its arms, optimisers and seeds, each run's config, and which runs
//! have finished.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::methods::Balance;
use crate::optim::OptimizerKind;
use crate::train::{run_dir, RunSummary, TrainConfig, TrainHead};

/// One row of the table: a method on an architecture, or a uni-modal ceiling (one modality
/// trained alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    pub balance: Balance,
    pub head: TrainHead,
    #[serde(default)]
    pub arch: Arch,
}

impl Arm {
    pub fn method(balance: Balance) -> Self {
        Self::on(Arch::Plain, balance)
    }

    /// `balance` on `arch`.
    pub fn on(arch: Arch, balance: Balance) -> Self {
        Self { balance, head: TrainHead::Fused, arch }
    }

    /// The two uni-modal ceilings (the paper's "Audio-only" and "Visual-only" rows).
    pub fn ceilings(arch: Arch) -> [Arm; 2] {
        [TrainHead::Audio, TrainHead::Visual].map(|head| Self { balance: Balance::None, head, arch })
    }

    /// The row's name: the method (or ceiling), after the architecture unless it is `plain`.
    pub fn label(&self) -> String {
        let what = match self.head {
            TrainHead::Fused => self.balance.name(),
            TrainHead::Audio => "audio-only".into(),
            TrainHead::Visual => "visual-only".into(),
        };
        match self.arch {
            Arch::Plain => what,
            arch => format!("{}-{what}", arch.name()),
        }
    }
}

/// What a comparison trains.
#[derive(Debug, Clone)]
pub struct Plan {
    pub arms: Vec<Arm>,
    pub optimizers: Vec<OptimizerKind>,
    pub seeds: Vec<u64>,
    /// Every run's settings but the arm, optimiser, seed and name; `out` is the comparison folder.
    pub template: TrainConfig,
    /// The template of each method a recipe gives settings of its own (BalanceBenchmark's
    /// per-method windows and alphas); the others use `template`.
    pub per_method: BTreeMap<Balance, TrainConfig>,
}

/// One run of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunKey {
    pub arm: Arm,
    pub optimizer: OptimizerKind,
    pub seed: u64,
}

/// A share of a plan's runs (`--part 0/2`).
pub use datasets::part::Part;

impl Plan {
    /// Every run, in a fixed order: optimiser, then arm, then seed.
    pub fn runs(&self) -> Vec<RunKey> {
        let mut v = Vec::new();
        for &optimizer in &self.optimizers {
            for &arm in &self.arms {
                for &seed in &self.seeds {
                    v.push(RunKey { arm, optimizer, seed });
                }
            }
        }
        v
    }

    /// The runs of `part` (all without one).
    pub fn share(&self, part: Option<Part>) -> Vec<RunKey> {
        self.runs().into_iter().enumerate().filter(|(i, _)| part.is_none_or(|p| p.keeps(*i))).map(|(_, r)| r).collect()
    }

    /// The full config of one run.
    pub fn config(&self, key: &RunKey) -> TrainConfig {
        let mut c = self.per_method.get(&key.arm.balance).unwrap_or(&self.template).clone();
        c.balance = key.arm.balance;
        c.arch = key.arm.arch;
        // A method or an architecture that needs its own head (MLA's shared one, AGM's concat,
        // TBN's binding) gets it.
        c.fusion = key.arm.arch.needs_fusion().or(key.arm.balance.needs_fusion()).unwrap_or(c.fusion);
        c.train_head = key.arm.head;
        c.optimizer = key.optimizer;
        c.seed = key.seed;
        c.name = format!("{}{}-seed{}", key.arm.label(), key.optimizer.name_suffix(), key.seed);
        c
    }

    /// Refuses a plan with nothing to run or a run that could not start.
    pub fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            !self.arms.is_empty() && !self.optimizers.is_empty() && !self.seeds.is_empty(),
            "nothing to compare: give --methods, --seeds and --optimizers"
        );
        for key in self.runs() {
            self.config(&key).validate()?;
        }
        Ok(())
    }
}

/// The summary of `cfg`'s run if it finished with exactly this config; an error if its folder
/// holds a run of another config (a comparison never mixes runs of different settings).
pub fn finished(cfg: &TrainConfig) -> Result<Option<RunSummary>> {
    crate::run_folder::finished(&run_dir(cfg), cfg)
}

/// The summaries of every run of the plan, or an error naming the runs not finished yet (by
/// part, with the array's part count `parts`: what to re-run).
pub fn collect(plan: &Plan, parts: Option<usize>) -> Result<Vec<(RunKey, RunSummary)>> {
    let runs = plan.runs();
    let (mut rows, mut missing) = (Vec::new(), Vec::new());
    for (position, key) in runs.iter().enumerate() {
        let cfg = plan.config(key);
        match finished(&cfg)? {
            Some(s) => rows.push((*key, s)),
            None => missing.push((position, cfg.name)),
        }
    }
    let hint = if parts.is_some() { "re-run those parts" } else { "run the parts first; --parts N names them" };
    anyhow::ensure!(
        missing.is_empty(),
        "{} of {} runs have not finished in {}: {} ({hint})",
        missing.len(),
        runs.len(),
        plan.template.out.display(),
        datasets::part::describe_unfinished(parts, &missing)
    );
    Ok(rows)
}
