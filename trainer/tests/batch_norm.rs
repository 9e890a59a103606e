//! Batch normalisation against PyTorch's nn.BatchNorm2d (goldens/batchnorm.json, made by
//! goldens/make_batchnorm_goldens.py): a training step (output, gradients, running statistics)
//! and an evaluation pass.

use burn::module::{AutodiffModule, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use trainer::batch_norm::BatchNorm;

type B = trainer::Backend;

fn close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(1.0)).fold(0f32, f32::max);
    assert!(worst <= tol, "{name}: worst relative difference {worst} (tolerance {tol})");
}

#[test]
fn batch_norm_matches_pytorch_in_training_and_evaluation() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/batchnorm.json");
    let golden: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let device = Default::default();
    for case in golden["cases"].as_array().unwrap() {
        let v = |k: &str| case[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<f32>>();
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let [b, c, h, w] = shape[..] else { panic!("4-D cases") };
        let tensor4 = |data: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(data, [b, c, h, w]), &device);
        let mut bn = BatchNorm::<B>::new(c, &device);
        bn.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(v("gamma"), [c]), &device));
        bn.beta = Param::from_tensor(Tensor::from_data(TensorData::new(v("beta"), [c]), &device));

        let x = tensor4(v("x")).require_grad();
        let y = bn.forward(x.clone());
        let grads = (y.clone() * tensor4(v("weights"))).sum().backward();
        let data = |t: TensorData| t.to_vec::<f32>().unwrap();
        let name = |what: &str| format!("{shape:?} {what}");
        close(&name("output"), &data(y.into_data()), &v("y"), 1e-4);
        close(&name("grad x"), &data(x.grad(&grads).unwrap().into_data()), &v("grad_x"), 1e-3);
        let grad1 = |p: &Param<Tensor<B, 1>>| p.val().grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        close(&name("grad gamma"), &grad1(&bn.gamma), &v("grad_gamma"), 1e-3);
        close(&name("grad beta"), &grad1(&bn.beta), &v("grad_beta"), 1e-3);
        let stat = |t: Tensor<_, 1>| t.into_data().to_vec::<f32>().unwrap();
        close(&name("running mean"), &stat(bn.running_mean.value_sync()), &v("running_mean"), 1e-5);
        close(&name("running var (unbiased, as PyTorch)"), &stat(bn.running_var.value_sync()), &v("running_var"), 1e-5);

        // Evaluation: no gradients tracked, running statistics used.
        let eval = bn.valid();
        let x_eval = Tensor::<_, 4>::from_data(TensorData::new(v("x_eval"), [b, c, h, w]), &device);
        close(&name("evaluation output"), &eval.forward(x_eval).into_data().to_vec::<f32>().unwrap(), &v("y_eval"), 1e-4);
    }
}
