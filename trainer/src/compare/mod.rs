//! `trainer compare`: every combination of architectures x methods x optimisers x seeds trained
//! on one dataset under one template config, and the comparison table of their test metrics.
//!
//! - Each run is a plain `train` run in `<out>/<arm><optimiser>-seed<N>`: a finished run (its
//!   `summary.json` present) is read back, not retrained; a killed one resumes from its last
//!   checkpoint; so a killed comparison is resumed by running the same command again.
//! - `--part i/n` trains the runs whose position in the fixed order is `i` modulo `n` (one
//!   array-job task each); `--merge` trains nothing and tabulates what the parts left. A part's
//!   runs are exactly the full run's, so merging the parts equals one full comparison.
//! - `--jobs N` trains N runs at once, each in its own `trainer train` process with its share of
//!   the cores (`RAYON_NUM_THREADS`), its output in `<out>/logs/<run>.log`: a tiny model keeps two
//!   cores busier as two one-thread runs than as one two-thread run, and every run stays its own
//!   process with its own random generators, so the numbers are the same as with `--jobs 1`.
//! - `--probe` adds the paper's uni-modal protocol: linear probes on each run's frozen encoders
//!   (`probe.rs`), read back from `probe.json` when made with the same settings.
//! - It writes `compare.md` (mean ± sd per arm, and the paired per-seed differences against the
//!   baseline `none` on the same architecture under the same optimiser), `compare.csv` (one row per run) and `compare.png`.
//!
//! Its parts: [`plan`] (the runs and their configs, whether each finished), [`runner`] (training
//! them in this process or in a pool of processes, the parent-exit watchdog, the probes) and
//! [`report`] (the table, the CSV and the plot).

pub mod plan;
pub mod report;
pub mod runner;

pub use plan::{collect, finished, Arm, Part, Plan, RunKey};
pub use report::{csv, markdown, mean_sd, merge, summarise, ArmSummary, Metric, METRICS};
pub use runner::{default_probe, exit_with_parent, probe_runs, run_share, run_share_in_processes, EXIT_WITH_PARENT};
