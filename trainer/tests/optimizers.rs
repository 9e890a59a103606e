//! Each optimiser on its own against PyTorch: three steps of a linear classifier (6 -> 3,
//! cross-entropy) with `optim::sgd`, `optim::adam` and `optim::adamw`, from the same float32
//! weights and batch, compared with `torch.optim.SGD`, `Adam` and `AdamW` in float64
//! (`goldens/make_optimizer_goldens.py`): the loss before each step and every weight after it,
//! within 1e-5 of the largest magnitude.

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde_json::Value;

type B = trainer::Backend;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn run<O: Optimizer<Linear<B>, B>>(g: &Value, name: &str, mut optim: O) -> f64 {
    let device = Default::default();
    // PyTorch's weight is [out, in]; Burn's [in, out].
    let w0 = floats(&g["w0"]);
    let wt: Vec<f32> = (0..18).map(|i| w0[(i % 3) * 6 + i / 3]).collect();
    let mut model = LinearConfig::new(6, 3).init::<B>(&device);
    model.weight = Param::from_tensor(Tensor::from_data(TensorData::new(wt, [6, 3]), &device));
    model.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(floats(&g["b0"]), [3]), &device)));
    let x = Tensor::<B, 2>::from_data(TensorData::new(floats(&g["x"]), [5, 6]), &device);
    let y: Vec<i64> = g["y"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [5]), &device);
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut worst = 0f64;
    for (step, want) in g["cases"][name]["steps"].as_array().unwrap().iter().enumerate() {
        let loss = ce.forward(model.forward(x.clone()), y.clone());
        let value: f64 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(g["lr"].as_f64().unwrap(), model, grads);
        let w = model.weight.val().into_data().to_vec::<f32>().unwrap();
        let w: Vec<f32> = (0..18).map(|i| w[(i % 6) * 3 + i / 6]).collect();
        let b = model.bias.as_ref().unwrap().val().into_data().to_vec::<f32>().unwrap();
        let have = [vec![value as f32], w, b].concat();
        let golden = [vec![want["loss"].as_f64().unwrap() as f32], floats(&want["w"]), floats(&want["b"])].concat();
        // Relative to the largest magnitude (a weight near zero is a difference of larger ones).
        let scale = golden.iter().fold(0f32, |m, x| m.max(x.abs()));
        for (i, (h, g)) in have.iter().zip(&golden).enumerate() {
            let r = f64::from((h - g).abs() / scale);
            worst = worst.max(r);
            assert!(r < 1e-5, "{name} step {step} value {i}: {h} vs PyTorch {g}");
        }
    }
    worst
}

#[test]
fn each_optimiser_steps_as_pytorch() {
    let g: Value = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/optimizers.json")).unwrap()).unwrap();
    let wd = |name: &str| g["cases"][name]["weight_decay"].as_f64().unwrap();
    let sgd = run(&g, "sgd", trainer::optim::sgd(0.9, wd("sgd")).init::<B, Linear<B>>());
    let adam = run(&g, "adam", trainer::optim::adam(wd("adam")).init::<B, Linear<B>>());
    let adamw = run(&g, "adamw", trainer::optim::adamw(wd("adamw")).init::<B, Linear<B>>());
    println!("largest relative difference: sgd {sgd:.1e}, adam {adam:.1e}, adamw {adamw:.1e}");
}
