//! Each balancing method's rule against its reference, through the method interface
//! (`goldens/methods.json`, from `goldens/make_method_goldens.py`), and the modality contribution.

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use serde_json::Value;
use trainer::methods::adaptive_alpha::adaptive_coefficients;
use trainer::methods::gblend::blend_weights;
use trainer::methods::modality_drop::drop_factor;
use trainer::methods::{build, Balance, FeatureStep, Head, HeadEstimate, MethodParams};
use trainer::metrics::Contribution;

type B = trainer::Backend;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/methods.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A feature step of `a`, `v` with no labels, head or inputs (Modality-Drop reads none).
fn step(a: Tensor<B, 2>, v: Tensor<B, 2>) -> FeatureStep<'static, B> {
    FeatureStep { audio: a, visual: v, labels: &[], head: &no_head, inputs: None }
}

fn no_head(_: Tensor<B, 2>, _: Tensor<B, 2>) -> trainer::model::Logits<B> {
    unreachable!("Modality-Drop needs no head")
}

fn params(drop_p: f64, seed: u64) -> MethodParams {
    let mut p = MethodParams::new(0.8, seed);
    p.settings.modality_drop.modality_drop_p = drop_p;
    p
}

#[test]
fn gradient_blending_weights_match_the_reference_rule() {
    let g = golden();
    let cases = g["gblend"].as_array().unwrap();
    assert!(cases.iter().filter(|c| c["source"] == "recorded").count() >= 2, "losses recorded by real estimate runs are among the cases");
    for case in cases {
        let estimates: Vec<HeadEstimate> = [(Head::Audio, "audio"), (Head::Visual, "visual"), (Head::Fused, "output")]
            .iter()
            .map(|&(head, key)| {
                let l: Vec<f64> = case["losses"][key].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                HeadEstimate { head, train_first: l[0], val_first: l[1], train_last: l[2], val_last: l[3] }
            })
            .collect();
        let have = blend_weights(&estimates);
        let want = [case["weights"]["audio"].as_f64().unwrap(), case["weights"]["visual"].as_f64().unwrap(), case["weights"]["output"].as_f64().unwrap()];
        for (h, w) in have.iter().zip(want) {
            assert!((h - w).abs() <= 1e-12, "{case}: {have:?} vs {want:?}");
        }
        assert!((have.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // Where BB divides by zero (a head whose overfitting did not change) the weights stay finite.
    let flat = HeadEstimate { head: Head::Audio, train_first: 1.0, val_first: 1.5, train_last: 0.5, val_last: 1.0 };
    let moving = |head| HeadEstimate { head, train_first: 1.0, val_first: 1.5, train_last: 0.5, val_last: 1.2 };
    let w = blend_weights(&[flat, moving(Head::Visual), moving(Head::Fused)]);
    assert!(w.iter().all(|x| x.is_finite()) && w[0] > 0.99, "{w:?}");
}

#[test]
fn modality_drop_is_pytorchs_dropout_of_a_one_on_the_pooled_features() {
    let g = golden();
    let device = Default::default();
    for case in g["dropout"].as_array().unwrap() {
        let p = case["p"].as_f64().unwrap();
        // The two values nn.Dropout(p) gives a one, as float32.
        let values: Vec<f32> = case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(values, vec![drop_factor(0.0, p) as f32, drop_factor(0.999, p) as f32], "p {p}");
        // How often the whole batch's features are dropped, through the method on real tensors.
        for (balance, dropped_is_audio) in [(Balance::ModalityDropAudio, true), (Balance::ModalityDropVisual, false)] {
            let mut m = build::<B>(balance, &params(p, 7));
            m.begin_epoch(0, true);
            let (n, mut zeros) = (2000usize, 0usize);
            for _ in 0..n {
                let a = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32; 4], [2, 2]), &device);
                let v = Tensor::<B, 2>::from_data(TensorData::new(vec![3.0f32; 4], [2, 2]), &device);
                let (a2, v2) = m.features(step(a, v));
                let (target, other, other_value) = if dropped_is_audio { (a2, v2, 3.0) } else { (v2, a2, 1.0) };
                let t = target.into_data().to_vec::<f32>().unwrap();
                let base = if dropped_is_audio { 1.0 } else { 3.0 };
                assert!(t.iter().all(|&x| x == t[0]), "one decision for the whole batch");
                assert!(t[0] == 0.0 || t[0] == base * values[1], "{} is 0 or {base} x 1/(1-p)", t[0]);
                assert_eq!(other.into_data().to_vec::<f32>().unwrap(), vec![other_value; 4], "the other modality untouched");
                zeros += usize::from(t[0] == 0.0);
            }
            let (frac, torch_frac) = (zeros as f64 / n as f64, case["zero_fraction"].as_f64().unwrap());
            let sigma = (p * (1.0 - p) / n as f64).sqrt();
            assert!((frac - p).abs() < 5.0 * sigma, "{balance:?} p {p}: dropped {frac}");
            assert!((torch_frac - p).abs() < 0.02, "PyTorch's own frequency {torch_frac}");
        }
    }
}

#[test]
fn a_dropped_modality_gets_no_gradient_and_the_draws_follow_seed_and_epoch() {
    let device = Default::default();
    let mut m = build::<B>(Balance::ModalityDropAudio, &params(0.5, 3));
    let draws = |m: &mut Box<dyn trainer::methods::Method<B>>, epoch: usize| -> Vec<f32> {
        m.begin_epoch(epoch, true);
        (0..16)
            .map(|_| {
                let a = Tensor::<B, 2>::random([4, 8], Distribution::Normal(0.0, 1.0), &device).require_grad();
                let v = Tensor::<B, 2>::random([4, 8], Distribution::Normal(0.0, 1.0), &device).require_grad();
                let (a2, v2) = m.features(step(a.clone(), v.clone()));
                let grads = (a2.sum() + v2.sum()).backward();
                let ga = a.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
                let gv = v.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
                assert!(gv.iter().all(|&x| x == 1.0), "visual's gradient untouched");
                assert!(ga.iter().all(|&x| x == ga[0]) && (ga[0] == 0.0 || ga[0] == 2.0), "audio's gradient 0 or 1/(1-p): {ga:?}");
                ga[0]
            })
            .collect()
    };
    let e0 = draws(&mut m, 0);
    assert!(e0.contains(&0.0) && e0.contains(&2.0), "{e0:?}");
    assert_eq!(draws(&mut m, 0), e0, "a resumed epoch draws the same");
    assert_ne!(draws(&mut m, 1), e0, "another epoch draws anew");
    let mut other_seed = build::<B>(Balance::ModalityDropAudio, &params(0.5, 4));
    assert_ne!(draws(&mut other_seed, 0), e0, "another seed draws anew");
}

#[test]
fn adaptive_alpha_makes_the_reference_rule_scale_by_one_over_rho() {
    let g = golden();
    for case in g["adaptive"].as_array().unwrap() {
        let (rho, alpha, k) = (case["rho"].as_f64().unwrap(), case["alpha"].as_f64().unwrap(), case["k"].as_f64().unwrap());
        assert!((k - 1.0 / rho).abs() < 1e-9, "the reference's 1 - tanh(alpha rho) at our alpha is 1/rho: {case}");
        // Audio dominant (score_a / score_v = rho), and visual dominant (= 1 / rho).
        let (k_a, k_v, a) = adaptive_coefficients(rho);
        assert!((k_a - k).abs() < 1e-12 && k_v == 1.0 && (a - alpha).abs() < 1e-12, "rho {rho}: {k_a} {k_v} {a}");
        let (k_a, k_v, a) = adaptive_coefficients(1.0 / rho);
        assert!((k_v - k).abs() < 1e-9 && (rho == 1.0 || k_a == 1.0) && (a - alpha).abs() < 1e-9, "1/rho {rho}: {k_a} {k_v} {a}");
    }
}

#[test]
fn shapley_contribution_of_two_modalities() {
    // Both 0.8, audio alone 0.7, vision alone 0.3, neither 0.1 (chance).
    let c = Contribution::from_accuracies(0.8, 0.7, 0.3, 0.1);
    assert!((c.audio - 0.55).abs() < 1e-12 && (c.visual - 0.15).abs() < 1e-12, "{c:?}");
    assert!((c.audio + c.visual - (0.8 - 0.1)).abs() < 1e-12, "efficiency: the contributions add up to both - neither");
    assert!((c.marginal_audio - 0.5).abs() < 1e-12 && (c.marginal_visual - 0.1).abs() < 1e-12, "BalanceBenchmark's default: both - other alone");
}
