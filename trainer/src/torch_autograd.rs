//! Operations whose backward pass is PyTorch's own (LibTorch builds only).
//!
//! burn-tch 0.21 runs Burn's generic gradients for what it does not implement itself
//! (convolutions: a transposed convolution for the input, a swapped-axes convolution for the
//! weights), where PyTorch calls one fused kernel. [`run`] makes one node of Burn's autodiff graph
//! whose forward pass records PyTorch's graph over the inputs and whose backward pass runs it:
//! the numbers and kernels PyTorch trains with. Callers reach it only when the backend is
//! `Autodiff<LibTorch>` ([`cast`] checks, by type), so every other backend is untouched.

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::{Autodiff, LibTorch};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

pub use crate::downcast::{cast, enabled, same};

/// LibTorch's backend, and its autodiff backend (the trainer's `Backend` with `--features tch`).
pub type Tch = LibTorch;
pub type Tracked = Autodiff<Tch>;

/// A tensor's autodiff primitive.
pub fn float<const D: usize>(t: Tensor<Tracked, D>) -> FloatTensor<Tracked> {
    t.into_primitive().tensor()
}

/// An autodiff primitive as a tensor.
pub fn tensor<const D: usize>(p: FloatTensor<Tracked>) -> Tensor<Tracked, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// `f` of `inputs` as one node of Burn's graph: where Burn tracks a gradient, `f` runs on leaves
/// of PyTorch's autograd (sharing the inputs' memory) and the node's backward pass is PyTorch's
/// backward of `f`; elsewhere `f` runs on the inputs as they are.
pub fn run<const N: usize>(inputs: [FloatTensor<Tracked>; N], f: impl FnOnce(&[tch::Tensor]) -> tch::Tensor) -> FloatTensor<Tracked> {
    let nodes = inputs.clone().map(|t| t.node);
    match <TorchOp as Backward<Tch, N>>::prepare::<NoCheckpointing>(TorchOp, nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            // Only the inputs Burn tracks ask PyTorch for a gradient (a model's first
            // convolution's input, the raw spectrogram, does not).
            let leaves: Vec<tch::Tensor> = inputs.iter().map(|t| t.primitive.tensor.detach().set_requires_grad(!t.node.requirement.is_none())).collect();
            let output = f(&leaves);
            let result = TchTensor::new(output.detach());
            let graph = Graph { leaves, output, _inputs: inputs.into_iter().map(|t| t.primitive).collect() };
            prep.finish(Saved(Arc::new(Mutex::new(Some(graph)))), result)
        }
        OpsKind::UnTracked(prep) => {
            let plain: Vec<tch::Tensor> = inputs.iter().map(|t| t.primitive.tensor.shallow_clone()).collect();
            prep.finish(TchTensor::new(f(&plain)))
        }
    }
}

/// PyTorch's graph of one operation: its leaves, its output, and Burn's handles to the inputs,
/// held so that burn-tch never writes over them in place while the graph may still read them.
struct Graph {
    leaves: Vec<tch::Tensor>,
    output: tch::Tensor,
    _inputs: Vec<TchTensor>,
}

/// The graph, taken by the one backward pass that runs it.
#[derive(Clone)]
struct Saved(Arc<Mutex<Option<Graph>>>);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Saved(PyTorch graph)")
    }
}

/// The node of Burn's graph whose backward pass is PyTorch's.
#[derive(Debug)]
struct TorchOp;

impl<const N: usize> Backward<Tch, N> for TorchOp {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, N>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Tch>(&ops.node);
        let graph = ops.state.0.lock().expect("an operation's graph").take().expect("a node's backward runs once");
        let wanted: Vec<_> = ops.parents.iter().enumerate().filter_map(|(i, p)| p.as_ref().map(|node| (i, node.id))).collect();
        if wanted.is_empty() {
            return;
        }
        // The gradient of <output, grad> with respect to the leaves is the vector-Jacobian
        // product of `f` with `grad`: what Burn's graph asks of this node. A dot product, not
        // sum(output * grad): it reads both once and writes no product as large as the output.
        let seed = graph.output.flatten(0, -1).dot(&grad.tensor.flatten(0, -1));
        let leaves: Vec<&tch::Tensor> = wanted.iter().map(|&(i, _)| &graph.leaves[i]).collect();
        let out = tch::Tensor::run_backward(&[seed], &leaves, false, false);
        for ((_, id), g) in wanted.into_iter().zip(out) {
            grads.register::<Tch>(id, TchTensor::new(g));
        }
    }
}
