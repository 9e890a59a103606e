//! The architectures of issue 18 against transcriptions of their authors' code
//! (`goldens/architectures.json`, from `goldens/make_architecture_goldens.py`): PSP's module,
//! classifier, similarity and AVPS loss, with gradients; TSM's shift, with its gradient. And
//! what the classifier's architectures do to the inputs: TSN's audio windows, TSM's mixing of
//! neighbouring frames, TBN's exact shares.

use burn::module::{AutodiffModule, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use serde_json::Value;
use trainer::arch::{audio_windows, temporal_shift, Arch, TSM_DIV};
use trainer::localize::model::{AvLocalizer, LocalizerHead};
use trainer::localize::psp::{avps_loss, avps_targets, similarity, Psp, SharedClassifier};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};

type B = trainer::Backend;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/architectures.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn n(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

fn close(ours: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(ours.len(), want.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
    }
}

/// A PyTorch `[out, in]` weight as a Burn linear's `[in, out]`.
fn set(l: &mut Linear<B>, w: &Value, out: usize, inp: usize) {
    let t = Tensor::<B, 2>::from_data(TensorData::new(floats(w), [out, inp]), &Default::default()).transpose();
    l.weight = Param::from_tensor(t);
}

#[test]
fn psp_module_classifier_and_avps_match_the_authors_code() {
    let g = golden();
    let p = &g["psp"];
    let (dim, hidden, classes, s, clips) = (n(&p["dim"]), n(&p["hidden"]), n(&p["classes"]), n(&p["segments"]), n(&p["clips"]));
    let device = Default::default();
    // The golden runs in eval mode: no dropout, while gradients are tracked here.
    let mut psp = Psp::<B>::with_dropout(dim, 0.0, &device);
    let w = &p["weights_out_in"];
    for (l, name) in
        [(&mut psp.v_l1, "v_L1"), (&mut psp.v_l2, "v_L2"), (&mut psp.v_fc, "v_fc"), (&mut psp.a_l1, "a_L1"), (&mut psp.a_l2, "a_L2"), (&mut psp.a_fc, "a_fc")]
    {
        set(l, &w[name], dim, dim);
    }
    psp.layer_norm.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(floats(&p["layer_norm_weight"]), [dim]), &device));
    psp.layer_norm.beta = Some(Param::from_tensor(Tensor::from_data(TensorData::new(floats(&p["layer_norm_bias"]), [dim]), &device)));
    let mut head = SharedClassifier::<B>::new(dim, classes, &device);
    set(&mut head.l1, &p["l1_out_in"], hidden, dim);
    set(&mut head.l2, &p["l2_out_in"], classes, hidden);

    // AVPS's targets from the segment labels (background 28): a 4-second event, an all-background clip.
    let labels: Vec<i64> = p["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    let targets = avps_targets(&labels, s, 28);
    close(&targets, &floats(&p["avps_targets"]), 1e-7, "AVPS targets");
    let targets = Tensor::<B, 2>::from_data(TensorData::new(targets, [clips, s]), &device);

    let stream = |key: &str| Tensor::<B, 3>::from_data(TensorData::new(floats(&p[key]), [clips, s, dim]), &device).require_grad();
    let out_w = Tensor::<B, 3>::from_data(TensorData::new(floats(&p["out_weights"]), [clips, s, classes]), &device);
    for case in p["cases"].as_array().unwrap() {
        let thr = case["threshold"].as_f64().unwrap();
        let (a, v) = (stream("audio_in"), stream("visual_in"));
        let out = psp.forward(a.clone(), v.clone(), thr);
        close(&values(out.fused.clone()), &floats(&case["fused"]), 1e-4, &format!("thr {thr}: fused"));
        close(&values(out.visual.clone()), &floats(&case["visual"]), 1e-4, &format!("thr {thr}: visual stream"));
        close(&values(out.audio.clone()), &floats(&case["audio"]), 1e-4, &format!("thr {thr}: audio stream"));
        let rows = |x: Tensor<B, 3>| x.reshape([clips * s, dim]);
        let [fused, audio, visual] = head.forward(rows(out.fused.clone()), rows(out.audio.clone()), rows(out.visual.clone()));
        close(&values(fused.clone()), &floats(&case["logits"]), 1e-4, &format!("thr {thr}: logits"));
        // The shares are exact: audio + visual = fused.
        close(&values(audio + visual), &values(fused.clone()), 1e-4, &format!("thr {thr}: shares"));
        let sim = similarity(out.visual, out.audio);
        close(&values(sim.clone()), &floats(&case["similarity"]), 1e-4, &format!("thr {thr}: similarity"));
        let loss = avps_loss(sim, targets.clone());
        close(&values(loss.clone()), &[case["avps_loss"].as_f64().unwrap() as f32], 1e-4, &format!("thr {thr}: AVPS"));
        let total = (fused.reshape([clips, s, classes]) * out_w.clone()).sum() + loss * 100.0;
        let grads = total.backward();
        close(&values(a.grad(&grads).unwrap()), &floats(&case["grad_audio"]), 1e-3, &format!("thr {thr}: d/d audio"));
        close(&values(v.grad(&grads).unwrap()), &floats(&case["grad_visual"]), 1e-3, &format!("thr {thr}: d/d visual"));
    }
}

#[test]
fn temporal_shift_matches_tsm_and_its_gradient() {
    let g = golden();
    assert_eq!(n(&g["tsm"]["n_div"]), TSM_DIV);
    let device = Default::default();
    for case in g["tsm"]["cases"].as_array().unwrap() {
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(n).collect();
        let shape = [shape[0], shape[1], shape[2], shape[3]];
        let x = Tensor::<B, 4>::from_data(TensorData::new(floats(&case["x"]), shape), &device).require_grad();
        let w = Tensor::<B, 4>::from_data(TensorData::new(floats(&case["w"]), shape), &device);
        let y = temporal_shift(x.clone(), n(&case["segments"]), TSM_DIV);
        let what = format!("{shape:?}, {} segments", n(&case["segments"]));
        close(&values(y.clone()), &floats(&case["y"]), 0.0, &what);
        let grads = (y * w).sum().backward();
        close(&values(x.grad(&grads).unwrap()), &floats(&case["grad"]), 1e-6, &format!("{what}: gradient"));
    }
}

/// TSN's audio windows are the spectrogram's consecutive column ranges of each clip.
#[test]
fn audio_windows_cut_each_clip_in_time_order() {
    let device = Default::default();
    let (b, f, w, k) = (2, 3, 14, 3);
    let data: Vec<f32> = (0..b * f * w).map(|i| i as f32).collect();
    let audio = Tensor::<B, 4>::from_data(TensorData::new(data.clone(), [b, 1, f, w]), &device);
    let win = audio_windows(audio, k);
    assert_eq!(win.dims(), [b * k, 1, f, w / k]);
    let got = values(win);
    for clip in 0..b {
        for seg in 0..k {
            for row in 0..f {
                for col in 0..w / k {
                    let want = data[(clip * f + row) * w + seg * (w / k) + col];
                    assert_eq!(got[(((clip * k + seg) * f) + row) * (w / k) + col], want, "clip {clip}, window {seg}, row {row}, col {col}");
                }
            }
        }
    }
}

/// TSM mixes neighbouring frames inside the visual trunk, TSN does not: changing a clip's
/// second frame changes TSM's features of its first frame and of no other clip.
#[test]
fn tsm_mixes_neighbouring_frames_and_tsn_does_not() {
    let device = Default::default();
    let (clips, t) = (2, 3);
    let frames = Tensor::<B, 4>::random([clips * t, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device).inner();
    let bumped =
        frames.clone().slice_assign([1..2, 0..3, 0..64, 0..64], Tensor::<B, 4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device).inner());
    for (arch, mixes) in [(Arch::Tsn, false), (Arch::Tsm, true)] {
        B::seed(&device, 7);
        let model = AvClassifier::<B>::with_arch(ModelPreset::Tiny, arch, t, FusionKind::Concat, 4, &device).valid();
        let (before, after) = (values(model.visual_segments(frames.clone())), values(model.visual_segments(bumped.clone())));
        let d = before.len() / (clips * t);
        let moved = |row: usize| before[row * d..(row + 1) * d].iter().zip(&after[row * d..(row + 1) * d]).any(|(x, y)| (x - y).abs() > 1e-6);
        assert_eq!(moved(0), mixes, "{arch:?}: frame 0 of clip 0");
        assert!(moved(1), "{arch:?}: the changed frame itself");
        assert!(!(3..6).any(moved), "{arch:?}: another clip's frames never move");
    }
}

/// Each architecture gives per-clip logits whose uni-modal shares add up to the fused ones
/// (concat for TSN/TSM, TBN's binding head averaged over the segments).
#[test]
fn every_architecture_has_exact_shares() {
    let device = Default::default();
    let (clips, t) = (3, 2);
    for (arch, fusion) in
        [(Arch::Plain, FusionKind::Concat), (Arch::Tsn, FusionKind::Concat), (Arch::Tsm, FusionKind::Concat), (Arch::Tbn, FusionKind::Binding)]
    {
        let model = AvClassifier::<B>::with_arch(ModelPreset::Tiny, arch, t, fusion, 5, &device);
        let audio = Tensor::<B, 4>::random([clips, 1, 32, 48], Distribution::Normal(0.0, 1.0), &device);
        let frames = Tensor::<B, 4>::random([clips * t, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let out = model.forward(audio, frames);
        assert_eq!(out.fused.dims(), [clips, 5], "{arch:?}");
        close(&values(out.audio + out.visual), &values(out.fused), 1e-4, &format!("{arch:?}: audio + visual = fused"));
    }
}

/// The PSP localizer's shares add up to its fused logits, and its similarity is one per segment.
#[test]
fn psp_localizer_shares_add_up() {
    let device = Default::default();
    let m = AvLocalizer::<B>::with_head(ModelPreset::Tiny, LocalizerHead::Psp, 0.099, 29, &device).valid();
    assert_eq!(m.head(), LocalizerHead::Psp);
    let (n, s) = (20, 10);
    let audio = Tensor::<B, 4>::random([n, 1, 64, 24], Distribution::Normal(0.0, 1.0), &device).inner();
    let frames = Tensor::<B, 4>::random([n, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device).inner();
    let out = m.forward(audio, frames, s);
    assert_eq!(out.similarity.as_ref().map(|x| x.dims()), Some([2, s]));
    let sum = (out.audio + out.visual - out.fused).abs().max().into_scalar();
    assert!(sum < 1e-4, "audio + visual shares differ from fused by {sum}");
}
