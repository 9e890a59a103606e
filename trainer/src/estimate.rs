//! Between-epoch estimates that train copies of the model: Gradient-Blending's (its own heads'
//! rule, and BalanceBenchmark's zeroed-input form). A method asks for one through its
//! `estimate_before` hook with an [`EstimateRequest`]; the driver runs it here on the task's
//! batches and hands the result back through `estimated`. The method never sees the loop, the
//! loop never names a method.

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::methods::{EstimateRequest, EstimateRule, Head, HeadEstimate};
use crate::task::Task;

/// A method's estimate runs before `epoch`: a copy of `model` per head trains `request.epochs`
/// epochs with a fresh optimiser at `lr`, the three copies stepping through the same batches (the
/// run's own order from `epoch` on); each copy's running training loss and validation loss are
/// taken after its first and its last epoch. Under [`EstimateRule::Heads`] a copy trains its head's
/// logits and its losses are per-sample means, validation on the hold-out; under [`EstimateRule::Bb`]
/// it trains the fused logits with the other modality's input zeroed ([`Task::padded`]) and its
/// losses are sums of batch means, validation on the selection split.
pub fn estimate_heads<B, T, O>(
    task: &T,
    model: &T::Model,
    new_optim: &dyn Fn() -> O,
    ce: &CrossEntropyLoss<B>,
    lr: f64,
    epoch: usize,
    request: EstimateRequest,
) -> Result<Vec<HeadEstimate>>
where
    B: AutodiffBackend,
    T: Task<B>,
    O: Optimizer<T::Model, B>,
{
    let bb = request.rule == EstimateRule::Bb;
    let mut copies: Vec<(Head, T::Model, O)> = Head::ALL.iter().map(|&h| (h, model.clone(), new_optim())).collect();
    let mut first: Vec<(f64, f64)> = Vec::new();
    let mut last: Vec<(f64, f64)> = Vec::new();
    let epochs = request.epochs;
    for e in 0..epochs {
        let mut sums = [0.0f64; 3];
        let mut samples = 0usize;
        for batch in task.batches(epoch + e) {
            let batch = batch?;
            for (i, (head, copy, optim)) in copies.iter_mut().enumerate() {
                let input = if bb { task.padded(batch.clone(), *head)? } else { batch.clone() };
                let out = task.forward(copy, input, &mut |s| (s.audio, s.visual));
                let trained = if bb { out.logits.fused.clone() } else { head.logits(&out.logits) };
                let loss = ce.forward(trained, out.targets);
                let value: f64 = loss.clone().into_scalar().elem();
                sums[i] += if bb { value } else { value * out.samples as f64 };
                if i == 0 {
                    samples += out.samples;
                }
                let grads = GradientsParams::from_grads(loss.backward(), &*copy);
                *copy = optim.step(lr, copy.clone(), grads);
            }
        }
        if e == 0 || e + 1 == epochs {
            let mut taken = Vec::new();
            for (i, (head, copy, _)) in copies.iter().enumerate() {
                let (train, val) = if bb {
                    let val = task.padded_selection_loss(&copy.valid(), *head)?.context("this task has no selection split to estimate on")?;
                    (sums[i], val)
                } else {
                    let val = task
                        .holdout_losses(&copy.valid())?
                        .context("this method needs a validation hold-out: set --val-fraction above 0, without --select-on-test")?;
                    (sums[i] / samples.max(1) as f64, head.of(&val))
                };
                taken.push((train, val));
            }
            if e == 0 {
                first = taken.clone();
            }
            if e + 1 == epochs {
                last = taken;
            }
        }
    }
    Ok(Head::ALL
        .iter()
        .enumerate()
        .map(|(i, &head)| HeadEstimate { head, train_first: first[i].0, val_first: first[i].1, train_last: last[i].0, val_last: last[i].1 })
        .collect())
}
