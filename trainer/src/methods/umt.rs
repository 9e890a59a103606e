//! `umt`: Uni-Modal Teacher (Du et al., arXiv 2106.11059; methods.md section 7). No official
//! code was published; this is BalanceBenchmark's form (`UMT_trainer.py` L129-146), the one
//! methods.md says to reproduce:
//!
//! - two uni-modal teachers trained first: each a full run of the same settings training one
//!   encoder with its share of the head (`train_head` audio / visual, the toolkit's uni-modal
//!   runs), its selected epoch's model kept (`model-best.bin`); `trainer train` trains them
//!   into `<out>/<name>.teacher-audio` and `.teacher-visual` (or reads them back when finished);
//! - the student's loss `CE(out) + s (MSE(h_a, t_a) + MSE(h_v, t_v))` inside the modulation
//!   window, `h` the student's pooled features, `t` the teacher's on the same inputs, MSE the
//!   mean over the batch's `B x d` elements, `s` = 10 (`--umt-scaling`, BB's `scaling`).
//!
//! The teachers' mode is a setting (`--umt-teachers eval|train`). BB never puts its teachers in
//! eval mode, so their batch norm normalises with each batch's statistics (and keeps updating
//! running statistics nothing reads): `train`, what the `balancebenchmark` recipe sets. The
//! default is `eval` (running statistics), what a distillation target normally means: a fixed
//! function of the clip, not of the batch it happens to share.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use burn::module::Module;
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::AutodiffBackend;

use super::{FeatureStep, LossInput, Method};
use crate::model::{AvClassifier, FusionKind, ModelPreset};

/// Where a run's teachers are and how to build them.
#[derive(Debug, Clone, PartialEq)]
pub struct Teachers {
    /// `model-best.bin` files of the audio and the visual teacher's run.
    pub audio: PathBuf,
    pub visual: PathBuf,
    pub preset: ModelPreset,
    /// The run's architecture and frames per clip (the teachers are trained with them).
    pub arch: crate::arch::Arch,
    pub frames: usize,
    pub fusion: FusionKind,
    pub classes: usize,
}

type Inner<B> = <B as AutodiffBackend>::InnerBackend;
/// The audio teacher and the visual teacher.
type Pair<B> = (AvClassifier<Inner<B>>, AvClassifier<Inner<B>>);

/// How the teachers' batch norms normalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TeacherMode {
    /// Running statistics: the teacher's features of a clip do not depend on its batch.
    Eval,
    /// Each batch's statistics, as BalanceBenchmark's teachers (never put in eval mode).
    Train,
}

/// UMT's settings (`--umt-scaling`, `--umt-teachers`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "umt")]
#[serde(default)]
pub struct Settings {
    /// UMT's distillation weight (BalanceBenchmark's `scaling`, 10).
    #[arg(long, default_value_t = 10.0)]
    pub umt_scaling: f64,
    /// UMT's teachers' batch norm: `eval` (running statistics) or `train` (each batch's, as BalanceBenchmark leaves them).
    #[arg(long, value_enum, default_value_t = TeacherMode::Eval)]
    pub umt_teachers: TeacherMode,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// UMT.
pub struct Umt<B: AutodiffBackend> {
    scaling: f64,
    mode: TeacherMode,
    teachers: Option<Teachers>,
    loaded: Option<Pair<B>>,
    /// The teachers' features of the current step.
    targets: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    active: bool,
    sums: [f64; 2],
    steps: usize,
}

impl<B: AutodiffBackend> Umt<B> {
    pub fn new(settings: Settings, teachers: Option<Teachers>) -> Self {
        Self { scaling: settings.umt_scaling, mode: settings.umt_teachers, teachers, loaded: None, targets: None, active: true, sums: [0.0; 2], steps: 0 }
    }

    fn load(&mut self, device: &B::Device) -> anyhow::Result<()> {
        if self.loaded.is_some() {
            return Ok(());
        }
        let t = self.teachers.as_ref().ok_or_else(|| anyhow::anyhow!("umt needs its teachers (trained by `trainer train` before the student)"))?;
        let one = |path: &PathBuf| -> anyhow::Result<AvClassifier<Inner<B>>> {
            let model = AvClassifier::<Inner<B>>::with_arch(t.preset, t.arch, t.frames, t.fusion, t.classes, device);
            model
                .load_file(path.clone(), &BinFileRecorder::<FullPrecisionSettings>::new(), device)
                .map_err(|e| anyhow::anyhow!("loading the teacher {}: {e}", path.display()))
        };
        self.loaded = Some((one(&t.audio)?, one(&t.visual)?));
        Ok(())
    }
}

/// The teachers' forward `f`, their batch norms normalising as `mode` says.
pub fn teacher_features<T>(mode: TeacherMode, f: impl FnOnce() -> T) -> T {
    match mode {
        TeacherMode::Eval => f(),
        TeacherMode::Train => crate::batch_norm::with_batch_statistics(f),
    }
}

/// Mean squared difference over every element.
fn mse<B: Backend>(x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
    (x - t).square().mean()
}

/// The student's loss: `ce + scaling (MSE(h_a, t_a) + MSE(h_v, t_v))`, with the two MSE values.
pub fn distillation_loss<B: Backend>(
    ce: Tensor<B, 1>,
    student: (Tensor<B, 2>, Tensor<B, 2>),
    teacher: (Tensor<B, 2>, Tensor<B, 2>),
    scaling: f64,
) -> (Tensor<B, 1>, f64, f64) {
    let (la, lv) = (mse(student.0, teacher.0), mse(student.1, teacher.1));
    let values = (la.clone().into_scalar().elem::<f64>(), lv.clone().into_scalar().elem::<f64>());
    (ce + (la + lv) * scaling, values.0, values.1)
}

impl<B: AutodiffBackend> Method<B> for Umt<B> {
    fn begin_epoch(&mut self, _epoch: usize, active: bool) {
        self.active = active;
        (self.sums, self.steps) = ([0.0; 2], 0);
    }

    fn features(&mut self, step: FeatureStep<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.targets = None;
        if let (true, Some((audio, frames))) = (self.active, step.inputs) {
            self.load(&audio.device()).expect("the teachers load");
            let (ta, tv) = self.loaded.as_ref().expect("loaded");
            let b = audio.dims()[0];
            let (a, v) = teacher_features(self.mode, || (ta.audio_features(audio.inner()), tv.visual_features(frames.inner(), b)));
            self.targets = Some((Tensor::from_inner(a), Tensor::from_inner(v)));
        }
        (step.audio, step.visual)
    }

    fn loss(&mut self, input: &LossInput<B>, ce: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 1>) -> Tensor<B, 1> {
        let base = ce(input.trained.clone());
        let (Some(teacher), Some(student)) = (self.targets.take(), input.features.clone()) else { return base };
        let (loss, la, lv) = distillation_loss(base, student, teacher, self.scaling);
        self.sums[0] += la;
        self.sums[1] += lv;
        self.steps += 1;
        loss
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        let n = self.steps.max(1) as f64;
        Some(serde_json::json!({ "epoch": epoch, "mse_audio": self.sums[0] / n, "mse_visual": self.sums[1] / n }))
    }
}
