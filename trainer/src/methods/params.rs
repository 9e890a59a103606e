//! The model's parameters by part (audio encoder, visual encoder, head) with their ranks, and the
//! gradient arithmetic methods do over a part as one flat vector (MMPareto's cosine, min-norm and
//! per-tensor rescaling).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Every float parameter of each part of a model, with its rank.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub audio: Vec<(ParamId, usize)>,
    pub visual: Vec<(ParamId, usize)>,
    pub head: Vec<(ParamId, usize)>,
}

#[derive(Default)]
struct Collect(Vec<(ParamId, usize)>);

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push((param.id, D));
    }
}

impl Parts {
    pub fn of<B: Backend>(audio: &impl Module<B>, visual: &impl Module<B>, head: &impl Module<B>) -> Self {
        let ids = |m: &dyn Fn(&mut Collect)| {
            let mut c = Collect::default();
            m(&mut c);
            c.0
        };
        Self { audio: ids(&|c| audio.visit(c)), visual: ids(&|c| visual.visit(c)), head: ids(&|c| head.visit(c)) }
    }
}

/// A parameter's gradient taken out of a [`GradientsParams`], flattened, with its shape.
pub struct Flat<B: Backend> {
    pub id: ParamId,
    pub shape: Vec<usize>,
    pub values: Tensor<B, 1>,
}

/// Removes the gradients of `ids` from `grads` (those present), flattened.
pub fn take<B: AutodiffBackend>(grads: &mut GradientsParams, ids: &[(ParamId, usize)]) -> Vec<Flat<B::InnerBackend>> {
    fn one<B: Backend, const D: usize>(grads: &mut GradientsParams, id: ParamId) -> Option<Flat<B>> {
        let g = grads.remove::<B, D>(id)?;
        let shape = g.dims().to_vec();
        Some(Flat { id, shape, values: g.flatten(0, D - 1) })
    }
    ids.iter()
        .filter_map(|&(id, rank)| match rank {
            1 => one::<B::InnerBackend, 1>(grads, id),
            2 => one::<B::InnerBackend, 2>(grads, id),
            3 => one::<B::InnerBackend, 3>(grads, id),
            4 => one::<B::InnerBackend, 4>(grads, id),
            r => panic!("parameter of rank {r}"),
        })
        .collect()
}

/// Puts a flattened gradient back, in its shape.
pub fn put<B: AutodiffBackend>(grads: &mut GradientsParams, flat: Flat<B::InnerBackend>) {
    fn one<B: Backend, const D: usize>(grads: &mut GradientsParams, f: Flat<B>) {
        let shape: [usize; D] = f.shape.clone().try_into().expect("rank");
        grads.register::<B, D>(f.id, f.values.reshape(shape));
    }
    match flat.shape.len() {
        1 => one::<B::InnerBackend, 1>(grads, flat),
        2 => one::<B::InnerBackend, 2>(grads, flat),
        3 => one::<B::InnerBackend, 3>(grads, flat),
        4 => one::<B::InnerBackend, 4>(grads, flat),
        r => panic!("parameter of rank {r}"),
    }
}

/// `<x, y>` over two parts' gradients, matched by id (a missing one counts as zero).
pub fn dot<B: Backend>(x: &[Flat<B>], y: &[Flat<B>]) -> f64 {
    x.iter()
        .filter_map(|a| y.iter().find(|b| b.id == a.id).map(|b| (a, b)))
        .map(|(a, b)| (a.values.clone() * b.values.clone()).sum().into_scalar().elem::<f64>())
        .sum()
}

/// The squared norm of one flat gradient.
pub fn norm2<B: Backend>(x: &Tensor<B, 1>) -> f64 {
    x.clone().square().sum().into_scalar().elem::<f64>()
}
