//! The successor methods' core rules (issue 16) against Python transcriptions of their authors'
//! code (`goldens/successors.json`, from `goldens/make_successor_goldens.py`), through the
//! method interface where the rule lives there.

use burn::module::ParamId;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use serde_json::Value;
use trainer::balance::Coefficients;
use trainer::batch_norm::BatchNorm;
use trainer::methods::agm::{response_score, scale_gradient, AgmState, Ratio};
use trainer::methods::mla::{Mla, Projector};
use trainer::methods::opm::{self, drop_probabilities};
use trainer::methods::params::Parts;
use trainer::methods::pmr::Pmr;
use trainer::methods::umt::{distillation_loss, teacher_features, TeacherMode};
use trainer::methods::{build, Balance, FeatureStep, LossInput, Method, MethodParams, SampledFeatures, StepContext};
use trainer::model::{uncertainty_fusion, Logits};

type B = trainer::Backend;
type I = <B as AutodiffBackend>::InnerBackend;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/successors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn n(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

fn labels(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn t2<Bk: Backend>(v: &Value, shape: [usize; 2]) -> Tensor<Bk, 2> {
    Tensor::from_data(TensorData::new(floats(v), shape), &Default::default())
}

fn close(have: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(have.len(), want.len(), "{what}: lengths");
    for (i, (h, w)) in have.iter().zip(want).enumerate() {
        assert!((h - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {h} vs {w}");
    }
}

fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

fn ctx<'a>(parts: &'a Parts, coeffs: &'a Coefficients, batch: usize, batches: usize, mean: Option<&'a [f32]>) -> StepContext<'a> {
    StepContext { epoch: 0, batch, batches, active: true, coeffs, audio_ids: &[], visual_ids: &[], parts, mean_feature: mean }
}

#[test]
fn opm_drop_probabilities_match_the_authors_calcu_q() {
    for c in golden()["opm"].as_array().unwrap() {
        let (q_a, q_v, theta) = drop_probabilities(f(&c["s_a"]), f(&c["s_v"]), n(&c["d_a"]), n(&c["d_v"]), &opm::Settings::default());
        for (h, w) in [(q_a, &c["q_a"]), (q_v, &c["q_v"]), (theta, &c["theta"])] {
            assert!((h - f(w)).abs() < 1e-12, "{c}: {q_a} {q_v} {theta}");
        }
    }
}

/// Through the method: only the dominant modality is dropped, per sample, in about `p_exe` of the
/// batches; both modalities are rescaled by `1 / (1 - theta)` when the drop executes.
#[test]
fn opm_drops_the_dominant_modality_per_sample() {
    let device = Default::default();
    let (rows, classes) = (16usize, 4usize);
    let labels: Vec<i64> = (0..rows as i64).map(|i| i % classes as i64).collect();
    // Features that are logits: audio confident and right, visual flat.
    let audio: Vec<f32> = (0..rows * classes).map(|k| if (k % classes) as i64 == labels[k / classes] { 4.0 } else { 0.0 }).collect();
    let head = |a: Tensor<B, 2>, v: Tensor<B, 2>| Logits { fused: a.clone() + v.clone(), audio: a, visual: v };
    let mut m = build::<B>(Balance::Opm, &MethodParams::new(0.8, 5));
    m.begin_epoch(0, true);
    let s_a: f64 = 4f64.exp() / (4f64.exp() + 3.0) * rows as f64;
    let (q_a, q_v, theta) = drop_probabilities(s_a, rows as f64 / classes as f64, classes, classes, &opm::Settings::default());
    assert!(q_a > 0.5 && q_v == 0.0);
    let scale = (1.0 / (1.0 - theta)) as f32;
    let (mut executed, mut dropped, mut kept, steps) = (0usize, 0usize, 0usize, 400usize);
    for _ in 0..steps {
        let a = Tensor::<B, 2>::from_data(TensorData::new(audio.clone(), [rows, classes]), &device);
        let v = Tensor::<B, 2>::ones([rows, classes], &device);
        let (a2, v2) = m.features(FeatureStep { audio: a, visual: v, labels: &labels, head: &head, inputs: None });
        let (a2, v2) = (values(a2), values(v2));
        if v2[0] == 1.0 {
            assert_eq!(a2, audio, "not executed: nothing changes");
            continue;
        }
        executed += 1;
        assert!(v2.iter().all(|&x| (x - scale).abs() < 1e-6), "visual kept, rescaled by 1/(1 - theta)");
        for (r, row) in a2.chunks(classes).enumerate() {
            if row.iter().all(|&x| x == 0.0) {
                dropped += 1;
            } else {
                kept += 1;
                close(row, &audio[r * classes..(r + 1) * classes].iter().map(|x| x * scale).collect::<Vec<_>>(), 1e-6, "kept audio row");
            }
        }
    }
    let sigma = |p: f64, n: usize| (p * (1.0 - p) / n as f64).sqrt();
    let exe = executed as f64 / steps as f64;
    assert!((exe - 0.7).abs() < 5.0 * sigma(0.7, steps), "executed in {exe} of the batches");
    let drop = dropped as f64 / (dropped + kept) as f64;
    assert!((drop - q_a).abs() < 5.0 * sigma(q_a, dropped + kept), "audio dropped per sample with q_a {q_a}: {drop}");
}

/// Registers the golden's gradient `v` of `shape` as parameter `id`'s.
fn register(g: &mut GradientsParams, id: ParamId, shape: &[usize], v: &Value) {
    let data = TensorData::new(floats(v), shape.to_vec());
    match shape.len() {
        1 => g.register::<I, 1>(id, Tensor::from_data(data, &Default::default())),
        2 => g.register::<I, 2>(id, Tensor::from_data(data, &Default::default())),
        4 => g.register::<I, 4>(id, Tensor::from_data(data, &Default::default())),
        _ => unreachable!(),
    }
}

/// Parameter `id`'s gradient, of `rank`, as values.
fn read(g: &GradientsParams, id: ParamId, rank: usize) -> Vec<f32> {
    match rank {
        1 => values(g.get::<I, 1>(id).unwrap()),
        2 => values(g.get::<I, 2>(id).unwrap()),
        4 => values(g.get::<I, 4>(id).unwrap()),
        _ => unreachable!(),
    }
}

/// MMPareto's per-encoder combination, through the method's `combine` on real gradients: the
/// official rule (min-norm weights under conflict, per-tensor rescale, x gamma) and
/// BalanceBenchmark's (x 2 gamma); the head gets the sum.
#[test]
fn mmpareto_combines_as_the_authors_code() {
    for case in golden()["mmpareto"].as_array().unwrap() {
        let shapes: Vec<Vec<usize>> = case["shapes"].as_array().unwrap().iter().map(|s| s.as_array().unwrap().iter().map(n).collect()).collect();
        let head_shapes: Vec<Vec<usize>> = case["head_shapes"].as_array().unwrap().iter().map(|s| s.as_array().unwrap().iter().map(n).collect()).collect();
        let ids = |shapes: &[Vec<usize>]| shapes.iter().map(|s| (ParamId::new(), s.len())).collect::<Vec<_>>();
        let parts = Parts { audio: ids(&shapes), visual: ids(&shapes), head: ids(&head_shapes) };
        for (balance, key) in [(Balance::Mmpareto, "official"), (Balance::MmparetoBb, "bb")] {
            let (mut mm, mut uni) = (GradientsParams::new(), GradientsParams::new());
            for (part, name) in [(&parts.audio, "audio"), (&parts.visual, "visual")] {
                for (k, &(id, _)) in part.iter().enumerate() {
                    register(&mut mm, id, &shapes[k], &case[name]["both"][k]);
                    register(&mut uni, id, &shapes[k], &case[name]["uni"][k]);
                }
            }
            for (k, &(id, _)) in parts.head.iter().enumerate() {
                register(&mut mm, id, &head_shapes[k], &case["head"]["both"][k]);
                register(&mut uni, id, &head_shapes[k], &case["head"]["uni"][k]);
            }
            let mut m = build::<B>(balance, &MethodParams::new(0.8, 0));
            let c = Coefficients::default();
            let (out, _) = m.combine(mm, uni, &ctx(&parts, &c, 0, 0, None));
            for (part, name) in [(&parts.audio, "audio"), (&parts.visual, "visual")] {
                for (k, &(id, rank)) in part.iter().enumerate() {
                    close(&read(&out, id, rank), &floats(&case[name][key][k]), 1e-5, &format!("{key} {name} tensor {k} (conflict {})", case["conflict"]));
                }
            }
            for (k, &(id, rank)) in parts.head.iter().enumerate() {
                close(&read(&out, id, rank), &floats(&case["head"]["sum"][k]), 1e-6, "head");
            }
        }
    }
}

#[test]
fn agm_coefficients_follow_the_authors_update_and_bbs_flip() {
    let g = &golden()["agm"];
    let alpha = f(&g["alpha"]);
    for (ratio, key) in [(Ratio::Official, "official"), (Ratio::BalanceBenchmark, "bb")] {
        let mut s = AgmState::default();
        for (k, (sc, want)) in g["scores"].as_array().unwrap().iter().zip(g[key].as_array().unwrap()).enumerate() {
            let (k_a, k_v) = s.step(f(&sc[0]), f(&sc[1]), alpha, ratio);
            assert!((k_a - f(&want["k_a"])).abs() < 1e-9 && (k_v - f(&want["k_v"])).abs() < 1e-9, "{key} step {k}: {k_a} {k_v} vs {want}");
            if ratio == Ratio::Official {
                assert!((s.t_a - f(&want["t_a"])).abs() < 1e-12 && (s.t_v - f(&want["t_v"])).abs() < 1e-12, "running means at step {k}");
            }
        }
    }
}

/// The authors' mechanism (backward hooks scaling dL/dm_a and dL/dm_v, m the Shapley responses
/// with the other modality zeroed) equals our loss on the head's slices: same responses, same
/// loss, same gradients on the features and the head.
#[test]
fn agm_gradient_scaling_equals_the_authors_hooks() {
    for c in golden()["agm"]["hooks"].as_array().unwrap() {
        let (b, d, classes) = (n(&c["B"]), n(&c["d"]), n(&c["C"]));
        let a = t2::<B>(&c["a"], [b, d]).require_grad();
        let v = t2::<B>(&c["v"], [b, d]).require_grad();
        let w = t2::<B>(&c["W"], [classes, 2 * d]).require_grad(); // PyTorch's [C, 2d]
        let bias = Tensor::<B, 1>::from_data(TensorData::new(floats(&c["b"]), [classes]), &Default::default()).require_grad();
        let half = bias.clone().reshape([1, classes]) / 2.0;
        let m_a = a.clone().matmul(w.clone().slice([0..classes, 0..d]).transpose()) + half.clone();
        let m_v = v.clone().matmul(w.clone().slice([0..classes, d..2 * d]).transpose()) + half;
        close(&values(m_a.clone()), &floats(&c["m_a"]), 1e-5, "m_a: the audio slice is the Shapley response");
        close(&values(m_v.clone()), &floats(&c["m_v"]), 1e-5, "m_v");
        let y = labels(&c["labels"]);
        assert!((response_score(&values(m_a.clone()), &y, classes) - f(&c["score_a"])).abs() < 1e-5);
        assert!((response_score(&values(m_v.clone()), &y, classes) - f(&c["score_v"])).abs() < 1e-5);
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [b]), &Default::default());
        let ce = CrossEntropyLossConfig::new().init(&Default::default());
        let loss = ce.forward(scale_gradient(m_a, f(&c["k_a"])) + scale_gradient(m_v, f(&c["k_v"])), targets);
        assert!((loss.clone().into_scalar().elem::<f64>() - f(&c["loss"])).abs() < 1e-5);
        let grads = loss.backward();
        close(&values(a.grad(&grads).unwrap()), &floats(&c["grad_a"]), 1e-5, "dL/da");
        close(&values(v.grad(&grads).unwrap()), &floats(&c["grad_v"]), 1e-5, "dL/dv");
        close(&values(w.grad(&grads).unwrap()), &floats(&c["grad_W"]), 1e-5, "dL/dW");
        close(&values(bias.grad(&grads).unwrap()), &floats(&c["grad_b"]), 1e-5, "dL/db");
    }
}

/// `agm-bb` through the method interface against BalanceBenchmark's `newGrad` and
/// `training_step`, transcribed and run on a toy model named as BB's: the same responses, loss,
/// coefficients and running means at BB's alpha 0.1, and every gradient after BB's edit (encoder
/// tensors of rank 2 scaled, rank 1 and the head left, the clip at 5 where the head's gradient
/// leaves [-5, 5]).
#[test]
fn agm_bb_is_balancebenchmarks_training_step() {
    use trainer::methods::agm_bb::{responses, AgmBb};
    let g = &golden()["agm"]["bb_steps"];
    let (b, d_in, d, classes) = (n(&g["B"]), n(&g["d_in"]), n(&g["d"]), n(&g["C"]));
    let p = &g["params"];
    let names = ["audio_weight", "audio_scale", "visual_weight", "visual_scale", "head_weight", "head_bias"];
    let shapes = [vec![d, d_in], vec![d], vec![d, d_in], vec![d], vec![classes, 2 * d], vec![classes]];
    let ids: Vec<ParamId> = names.iter().map(|_| ParamId::new()).collect();
    let ranked = |k: usize| (ids[k], shapes[k].len());
    let parts = Parts { audio: vec![ranked(0), ranked(1)], visual: vec![ranked(2), ranked(3)], head: vec![ranked(4), ranked(5)] };
    let mut m = AgmBb::new(f(&g["alpha"]));
    Method::<B>::begin_epoch(&mut m, 0, true);
    let steps = g["steps"].as_array().unwrap();
    let device = Default::default();
    for (k, s) in steps.iter().enumerate() {
        let w = |i: usize| t2::<B>(&p[names[i]], [shapes[i][0], *shapes[i].get(1).unwrap_or(&1)]).require_grad();
        let params: Vec<Tensor<B, 2>> = (0..6).map(w).collect();
        let encode = |x: &Value, i: usize| t2::<B>(x, [b, d_in]).matmul(params[i].clone().transpose()) * params[i + 1].clone().reshape([1, d]);
        let (a, v) = (encode(&s["audio"], 0), encode(&s["visual"], 2));
        let head = |a: Tensor<B, 2>, v: Tensor<B, 2>| {
            let fused = Tensor::cat(vec![a, v], 1).matmul(params[4].clone().transpose()) + params[5].clone().reshape([1, classes]);
            Logits { fused: fused.clone(), audio: fused.clone(), visual: fused }
        };
        let y = labels(&s["labels"]);
        let fused = |a: Tensor<B, 2>, v: Tensor<B, 2>| values(head(a, v).fused);
        let (m_a, m_v) = responses(&fused(a.clone(), v.clone()), &fused(a.zeros_like(), v.clone()), &fused(a.clone(), v.zeros_like()));
        close(&m_a, &floats(&s["m_a"]), 1e-4, &format!("step {k}: m_a = (F(a,v) - F(0,v)) / 2"));
        close(&m_v, &floats(&s["m_v"]), 1e-4, &format!("step {k}: m_v"));
        let (a, v) = Method::<B>::features(&mut m, FeatureStep { audio: a, visual: v, labels: &y, head: &head, inputs: None });
        let logits = head(a.clone(), v.clone());
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(y.clone(), [b]), &device);
        let ce = CrossEntropyLossConfig::new().init(&device);
        let input = LossInput { logits: &logits, trained: logits.fused.clone(), features: Some((a, v)), labels: &y, targets: targets.clone() };
        let loss = Method::<B>::loss(&mut m, &input, &|z| ce.forward(z, targets.clone()));
        assert!((loss.clone().into_scalar().elem::<f64>() - f(&s["loss"])).abs() < 1e-4, "step {k}: the plain cross-entropy");
        let autodiff = loss.backward();
        let mut grads = GradientsParams::new();
        for (i, t) in params.iter().enumerate() {
            let grad = t.grad(&autodiff).unwrap();
            if shapes[i].len() == 1 {
                grads.register::<I, 1>(ids[i], grad.reshape([shapes[i][0]]));
            } else {
                grads.register::<I, 2>(ids[i], grad);
            }
        }
        let applied = Method::<B>::gradients(&mut m, &mut grads, &ctx(&parts, &Coefficients::default(), k, steps.len(), None));
        assert!((applied.k_a - f(&s["k_a"])).abs() < 1e-6 && (applied.k_v - f(&s["k_v"])).abs() < 1e-6, "step {k}: {applied:?} vs {s:?}");
        let (t_a, t_v) = m.running_means();
        assert!((t_a - f(&s["t_a"])).abs() < 1e-5 && (t_v - f(&s["t_v"])).abs() < 1e-5, "step {k}: running means {t_a} {t_v}");
        for (i, name) in names.iter().enumerate() {
            let have = if shapes[i].len() == 1 { values(grads.get::<I, 1>(ids[i]).unwrap()) } else { values(grads.get::<I, 2>(ids[i]).unwrap()) };
            close(&have, &floats(&s["grads"][name]), 1e-4, &format!("step {k} (clipped: {}): d{name}", s["clipped"]));
        }
    }
    let clipped = steps.iter().filter(|s| s["clipped"].as_bool().unwrap()).count();
    assert!(clipped > 0 && clipped < steps.len(), "the golden covers both sides of the clip");
    assert_eq!(Method::<B>::epoch_log(&m, 0).unwrap()["clipped_steps"], clipped);
}

#[test]
fn pmr_prototypes_and_loss_match_the_authors_code() {
    let device = Default::default();
    for c in golden()["pmr"].as_array().unwrap() {
        let (classes, d, b) = (n(&c["C"]), n(&c["d"]), n(&c["B"]));
        let mut pmr = Pmr::new(f(&c["alpha"]), f(&c["momentum"]));
        for (epoch, s) in c["samples"].as_array().unwrap().iter().enumerate() {
            let sample = SampledFeatures { dim: d, classes, audio: floats(&s["audio"]), visual: floats(&s["visual"]), labels: labels(&s["labels"]) };
            assert!(Method::<B>::sample_before(&pmr, epoch));
            Method::<B>::sampled(&mut pmr, epoch, &sample);
            assert!(!Method::<B>::sample_before(&pmr, epoch));
        }
        let (pa, pv) = pmr.prototypes().unwrap();
        close(pa, &floats(&c["prototypes_audio"]), 1e-5, "audio prototypes (second epoch: with momentum)");
        close(pv, &floats(&c["prototypes_visual"]), 1e-5, "visual prototypes");
        let a = t2::<B>(&c["a"], [b, d]).require_grad();
        let v = t2::<B>(&c["v"], [b, d]).require_grad();
        let out = t2::<B>(&c["out"], [b, classes]);
        let y = labels(&c["labels"]);
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(y.clone(), [b]), &device);
        let logits = Logits { fused: out.clone(), audio: out.clone(), visual: out.clone() };
        let ce = CrossEntropyLossConfig::new().init(&device);
        Method::<B>::begin_epoch(&mut pmr, 1, true);
        let input = LossInput { logits: &logits, trained: out, features: Some((a.clone(), v.clone())), labels: &y, targets: targets.clone() };
        let loss = Method::<B>::loss(&mut pmr, &input, &|z| ce.forward(z, targets.clone()));
        assert!((loss.clone().into_scalar().elem::<f64>() - f(&c["loss"])).abs() < 1e-4, "loss, ratio {}", c["ratio"]);
        let grads = loss.backward();
        // A modality without the term is not in the loss's graph: no gradient, PyTorch's zeros.
        let grad = |x: &Tensor<B, 2>| x.grad(&grads).map_or(vec![0.0; b * d], values);
        close(&grad(&a), &floats(&c["grad_a"]), 1e-4, "dL/da");
        close(&grad(&v), &floats(&c["grad_v"]), 1e-4, "dL/dv");
        let log = Method::<B>::epoch_log(&pmr, 1).unwrap();
        let boosted = if f(&c["ratio"]) > 1.0 { "visual_boosted" } else { "audio_boosted" };
        assert_eq!(log[boosted], 1, "the slower modality by prototypes got the term: {log}");
    }
}

/// MLA's projector over a run of alternating steps, through the method on the shared head's
/// weight gradient (Burn's `[d, C]`, the transpose of PyTorch's), in each form against its own
/// transcription: the paper's, the authors' released code (commit 4735bbc) and BalanceBenchmark's.
#[test]
fn mla_projects_the_head_gradient_as_each_form_it_names() {
    // The code's element-wise denominator `alpha_p + k_i r_j` comes near zero for some entries,
    // which amplifies the float32 rounding of the batch-mean feature a step hands the method.
    for (form, key, tol) in [(Projector::Paper, "mla", 1e-4), (Projector::Code, "mla_code", 2e-3), (Projector::Bb, "mla_bb", 2e-3)] {
        let g = &golden()[key];
        let (d, classes, b, t) = (n(&g["d"]), n(&g["C"]), n(&g["B"]), n(&g["T"]));
        let weight = ParamId::new();
        let parts = Parts { head: vec![(weight, 2)], ..Default::default() };
        let mut m = Mla::new(form);
        let c = Coefficients::default();
        for (k, s) in g["steps"].as_array().unwrap().iter().enumerate() {
            let feats = floats(&s["features"]);
            let mean: Vec<f32> = (0..d).map(|j| (0..b).map(|i| f64::from(feats[i * d + j])).sum::<f64>() as f32 / b as f32).collect();
            let mut grads = GradientsParams::new();
            grads.register::<I, 2>(weight, t2::<I>(&s["grad"], [classes, d]).transpose());
            Method::<B>::gradients(&mut m, &mut grads, &ctx(&parts, &c, n(&s["batch"]), t, Some(&mean)));
            let have = values(grads.get::<I, 2>(weight).unwrap().transpose());
            close(&have, &floats(&s["projected"]), tol, &format!("{key} step {k} ({})", s["modality"]));
        }
        close(&m.projector().iter().map(|&x| x as f32).collect::<Vec<_>>(), &floats(&g["P"]), tol, &format!("{key}: the projector"));
    }
}

#[test]
fn the_shared_heads_fusion_is_mlas_per_sample_entropy_weighting() {
    let g = &golden()["entropy_fusion"];
    let (b, c) = (n(&g["B"]), n(&g["C"]));
    let fused = uncertainty_fusion(t2::<I>(&g["audio"], [b, c]), t2::<I>(&g["visual"], [b, c]));
    close(&values(fused), &floats(&g["fused"]), 1e-5, "fused");
}

#[test]
fn umt_student_loss_is_bbs() {
    let g = &golden()["umt"];
    let (b, d, c) = (n(&g["B"]), n(&g["d"]), n(&g["C"]));
    let (h_a, h_v) = (t2::<B>(&g["h_a"], [b, d]).require_grad(), t2::<B>(&g["h_v"], [b, d]).require_grad());
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels(&g["labels"]), [b]), &Default::default());
    let ce = CrossEntropyLossConfig::new().init(&Default::default()).forward(t2::<B>(&g["out"], [b, c]), targets);
    let (loss, _, _) = distillation_loss(ce, (h_a.clone(), h_v.clone()), (t2(&g["t_a"], [b, d]), t2(&g["t_v"], [b, d])), f(&g["scaling"]));
    assert!((loss.clone().into_scalar().elem::<f64>() - f(&g["loss"])).abs() < 1e-4);
    let grads = loss.backward();
    close(&values(h_a.grad(&grads).unwrap()), &floats(&g["grad_a"]), 1e-5, "dL/dh_a");
    close(&values(h_v.grad(&grads).unwrap()), &floats(&g["grad_v"]), 1e-5, "dL/dh_v");
}

/// A teacher of the golden (Linear -> batch norm -> ReLU) on the inner backend, with our batch norm.
fn bb_teacher(t: &Value, b: usize, d_in: usize, d: usize) -> impl Fn() -> Tensor<I, 2> {
    let device = Default::default();
    let one = |v: &Value| Tensor::<I, 1>::from_data(TensorData::new(floats(v), [d]), &device);
    let mut bn = BatchNorm::<I>::new(d, &device);
    bn.gamma = burn::module::Param::from_tensor(one(&t["gamma"]));
    bn.beta = burn::module::Param::from_tensor(one(&t["beta"]));
    bn.running_mean = burn::module::RunningState::new(one(&t["running_mean"]));
    bn.running_var = burn::module::RunningState::new(one(&t["running_var"]));
    let (x, w, bias) = (t2::<I>(&t["x"], [b, d_in]), t2::<I>(&t["weight"], [d, d_in]), one(&t["bias"]));
    move || burn::tensor::activation::relu(bn.forward(x.clone().matmul(w.clone().transpose()) + bias.clone().unsqueeze::<2>()))
}

/// `--umt-teachers train`: BB's training_step with its teachers left in training mode (their
/// batch norm on each batch's statistics), and the default `eval` on the running ones.
#[test]
fn umt_bb_distils_towards_teachers_in_training_mode() {
    let g = &golden()["umt_bb"];
    let (b, d_in, d, c) = (n(&g["B"]), n(&g["d_in"]), n(&g["d"]), n(&g["C"]));
    let [ta, tv] = ["audio", "visual"].map(|m| bb_teacher(&g["teachers"][m], b, d_in, d));
    for (mode, key) in [(TeacherMode::Train, "train_features"), (TeacherMode::Eval, "eval_features")] {
        let (fa, fv) = teacher_features(mode, || (ta(), tv()));
        close(&values(fa), &floats(&g["teachers"]["audio"][key]), 1e-5, key);
        close(&values(fv), &floats(&g["teachers"]["visual"][key]), 1e-5, key);
    }
    // The mode is scoped: outside it the teacher is back on its running statistics.
    close(&values(ta()), &floats(&g["teachers"]["audio"]["eval_features"]), 1e-5, "after");
    let (fa, fv) = teacher_features(TeacherMode::Train, || (ta(), tv()));
    let (h_a, h_v) = (t2::<B>(&g["student"]["audio"], [b, d]).require_grad(), t2::<B>(&g["student"]["visual"], [b, d]).require_grad());
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels(&g["labels"]), [b]), &Default::default());
    let ce = CrossEntropyLossConfig::new().init(&Default::default()).forward(t2::<B>(&g["out"], [b, c]), targets);
    let (loss, _, _) = distillation_loss(ce, (h_a.clone(), h_v.clone()), (Tensor::from_inner(fa), Tensor::from_inner(fv)), f(&g["scaling"]));
    assert!((loss.clone().into_scalar().elem::<f64>() - f(&g["loss"])).abs() < 1e-4 * (1.0 + f(&g["loss"]).abs()));
    let grads = loss.backward();
    close(&values(h_a.grad(&grads).unwrap()), &floats(&g["grads"]["audio"]), 1e-5, "dL/dh_a");
    close(&values(h_v.grad(&grads).unwrap()), &floats(&g["grads"]["visual"]), 1e-5, "dL/dh_v");
}

/// BalanceBenchmark's Gradient-Blending estimate on its toy (`gblend_bb`): a linear encoder per
/// modality and a head on their concatenation, as a task of our driver.
mod gblend_toy {
    use super::*;
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use std::path::Path;
    use std::sync::mpsc::{channel, Receiver};
    use std::time::Instant;
    use trainer::methods::Head;
    use trainer::run_log::{StepRecord, TrainStats};
    use trainer::task::{Evaluated, FeatureHook, Forward, Task};

    #[derive(Module, Debug)]
    pub struct Toy<B: Backend> {
        audio: Linear<B>,
        visual: Linear<B>,
        head: Linear<B>,
    }

    impl<Bk: Backend> Toy<Bk> {
        /// Its parameters as the golden's torch `nn.Linear`s have them (`[out, in]`).
        pub fn from(g: &Value) -> Self {
            let (d_in, d, c) = (n(&g["d_in"]), n(&g["d"]), n(&g["C"]));
            let p = &g["params"];
            let linear = |w: &str, b: &str, i: usize, o: usize| {
                let mut l = LinearConfig::new(i, o).init(&Default::default());
                l.weight = Param::from_tensor(t2::<Bk>(&p[w], [o, i]).transpose());
                l.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(floats(&p[b]), [o]), &Default::default())));
                l
            };
            Toy {
                audio: linear("audio_weight", "audio_bias", d_in, d),
                visual: linear("visual_weight", "visual_bias", d_in, d),
                head: linear("head_weight", "head_bias", 2 * d, c),
            }
        }

        fn fused(&self, a: Tensor<Bk, 2>, v: Tensor<Bk, 2>) -> Tensor<Bk, 2> {
            self.head.forward(Tensor::cat(vec![self.audio.forward(a), self.visual.forward(v)], 1))
        }
    }

    #[derive(Clone)]
    pub struct ToyBatch {
        audio: Vec<f32>,
        visual: Vec<f32>,
        labels: Vec<i64>,
    }

    pub struct ToyTask {
        pub d_in: usize,
        pub train: Vec<ToyBatch>,
        pub test: Vec<ToyBatch>,
    }

    fn batches(v: &Value) -> Vec<ToyBatch> {
        let b = |x: &Value| ToyBatch { audio: floats(&x["audio"]), visual: floats(&x["visual"]), labels: labels(&x["label"]) };
        v.as_array().unwrap().iter().map(b).collect()
    }

    impl ToyTask {
        pub fn from(g: &Value) -> Self {
            ToyTask { d_in: n(&g["d_in"]), train: batches(&g["train"]), test: batches(&g["test"]) }
        }

        fn inputs<Bk: Backend>(&self, b: &ToyBatch) -> (Tensor<Bk, 2>, Tensor<Bk, 2>, Tensor<Bk, 1, Int>) {
            let (rows, device) = (b.labels.len(), Default::default());
            let x = |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), [rows, self.d_in]), &device);
            (x(&b.audio), x(&b.visual), Tensor::from_data(TensorData::new(b.labels.clone(), [rows]), &device))
        }
    }

    impl Task<B> for ToyTask {
        type Model = Toy<B>;
        type Batch = ToyBatch;
        type Selected = f64;
        type Log = f64;

        fn encoders(_: &Toy<B>) -> (Vec<ParamId>, Vec<ParamId>) {
            (Vec::new(), Vec::new())
        }
        fn batches(&self, _epoch: usize) -> Receiver<anyhow::Result<ToyBatch>> {
            let (tx, rx) = channel();
            for b in &self.train {
                tx.send(Ok(b.clone())).unwrap();
            }
            rx
        }
        fn forward(&self, model: &Toy<B>, batch: ToyBatch, _features: FeatureHook<B>) -> Forward<B> {
            let (a, v, targets) = self.inputs::<B>(&batch);
            let fused = model.fused(a, v);
            // The estimate under `bb` reads only the fused logits.
            let logits = Logits { fused: fused.clone(), audio: fused.clone(), visual: fused.clone() };
            Forward { logits, features: None, trained: fused, aux_loss: None, targets, samples: batch.labels.len(), labels: batch.labels }
        }
        fn padded(&self, mut batch: ToyBatch, keep: Head) -> anyhow::Result<ToyBatch> {
            match keep {
                Head::Audio => batch.visual.fill(0.0),
                Head::Visual => batch.audio.fill(0.0),
                Head::Fused => {}
            }
            Ok(batch)
        }
        fn padded_selection_loss(&self, model: &Toy<I>, keep: Head) -> anyhow::Result<Option<f64>> {
            let ce = CrossEntropyLossConfig::new().init(&Default::default());
            let mut sum = 0.0;
            for b in &self.test {
                let (a, v, y) = self.inputs::<I>(&self.padded(b.clone(), keep)?);
                sum += ce.forward(model.fused(a, v), y).into_scalar().elem::<f64>();
            }
            Ok(Some(sum))
        }
        fn evaluate(&self, _: &Toy<I>, _: usize, _: f64, _: TrainStats, _: Instant) -> anyhow::Result<Evaluated<f64, f64>> {
            unreachable!("an estimate does not evaluate")
        }
        fn summary_line(&self, _: &f64) -> String {
            unreachable!("an estimate logs nothing")
        }
        fn csv_header(&self) -> String {
            unreachable!("an estimate logs nothing")
        }
        fn csv_row(&self, _: &f64) -> String {
            unreachable!("an estimate logs nothing")
        }
        fn plots(&self, _: &Path, _: &[f64], _: &[StepRecord]) -> anyhow::Result<()> {
            unreachable!("an estimate plots nothing")
        }
    }
}

/// `--gblend-estimate bb`: the driver's estimate runs, given BB's toy as a task, produce BB's
/// losses (sums of batch means of the fused logits, the other modality's input zeroed, AdamW
/// from its initial state at the base rate) and BB's weights.
#[test]
fn gblend_bb_estimate_is_bbs_super_epoch_origin() {
    use trainer::methods::gblend::blend_weights;
    use trainer::methods::{EstimateRequest, EstimateRule, Head};
    let g = &golden()["gblend_bb"];
    let task = gblend_toy::ToyTask::from(g);
    let model = gblend_toy::Toy::<B>::from(g);
    let new_optim = || trainer::optim::adamw(f(&g["weight_decay"])).init::<B, gblend_toy::Toy<B>>();
    let ce = CrossEntropyLossConfig::new().init(&Default::default());
    let request = EstimateRequest { epochs: n(&g["super_epoch"]), rule: EstimateRule::Bb };
    let estimates = trainer::estimate::estimate_heads(&task, &model, &new_optim, &ce, f(&g["lr"]), 0, request).unwrap();
    for (e, key) in estimates.iter().zip(["audio", "visual", "output"]) {
        let want = &g["losses"][key];
        for (have, name) in [(e.train_first, "train_first"), (e.val_first, "val_first"), (e.train_last, "train_last"), (e.val_last, "val_last")] {
            assert!((have - f(&want[name])).abs() < 1e-4 * (1.0 + f(&want[name]).abs()), "{key} {name}: {have} vs {}", want[name]);
        }
    }
    assert_eq!(estimates.iter().map(|e| e.head).collect::<Vec<_>>(), Head::ALL);
    let w = blend_weights(&estimates);
    for (have, key) in w.iter().zip(["audio", "visual", "output"]) {
        assert!((have - f(&g["weights"][key])).abs() < 1e-3, "weight {key}: {have} vs {}", g["weights"][key]);
    }
}

/// `mmpareto-bb` against BalanceBenchmark's `training_step` transcribed on a toy (its cosine
/// compares a gradient with itself, so every encoder tensor, rank 1 included, ends as
/// `2 alpha (g_mm + g_uni)`, the head as the plain sum): our method's combination of the same two
/// gradients gives what BB's step leaves in `.grad`.
#[test]
fn mmpareto_bb_is_bbs_training_step() {
    let g = &golden()["mmpareto_bb_step"];
    assert_eq!(g["cos"]["audio"], 1.0);
    let shapes: Vec<Vec<usize>> = g["shapes"].as_array().unwrap().iter().map(|s| s.as_array().unwrap().iter().map(n).collect()).collect();
    let ids: Vec<ParamId> = shapes.iter().map(|_| ParamId::new()).collect();
    // BB's names, in order: audio weight, scale; visual weight, scale; head weight, bias.
    let part = |r: std::ops::Range<usize>| r.map(|k| (ids[k], shapes[k].len())).collect::<Vec<_>>();
    let parts = Parts { audio: part(0..2), visual: part(2..4), head: part(4..6) };
    let grads = |key: &str| {
        let mut out = GradientsParams::new();
        for (k, shape) in shapes.iter().enumerate() {
            // PyTorch's Linear weight is [out, in]; the combination is elementwise per tensor.
            register(&mut out, ids[k], shape, &g[key][k]);
        }
        out
    };
    let mut settings = MethodParams::new(0.0, 0);
    settings.settings.mmpareto.mmpareto_gamma = f(&g["alpha"]);
    let mut m = build::<B>(Balance::MmparetoBb, &settings);
    let c = Coefficients::default();
    let (out, _) = m.combine(grads("mm"), grads("uni"), &ctx(&parts, &c, 0, 0, None));
    for (k, shape) in shapes.iter().enumerate() {
        close(&read(&out, ids[k], shape.len()), &floats(&g["bb"][k]), 1e-5, &g["names"][k].to_string());
    }
}
