//! The GPU code path on a machine without a GPU (`trainer::backend_check`): one OGM training step
//! of each `tiny` model on CubeCL's WebGPU/Vulkan runtime (the kernels CUDA runs too, compiled for
//! Vulkan; on CI, Mesa's lavapipe CPU driver) against the same step on Flex, and GE's noise drawn
//! on CubeCL against the rule's distribution.
//!
//! Built only with `--features wgpu-runtime` (`cargo xtask test` builds every test so) or
//! `--features cuda` (then it runs on CUDA; on a GPU machine `trainer/bench/gpu_check.sh` runs
//! the same checks through `bench-trainer --check`).
#![cfg(any(feature = "wgpu-runtime", feature = "cuda"))]

use trainer::backend_check::{ge_noise_has_the_rule_s_distribution, Checked, Disagreement};

fn passes(check: Result<Vec<String>, Disagreement>) {
    match check {
        Ok(lines) => lines.iter().for_each(|l| eprintln!("{l}")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn an_ogm_step_of_the_classifier_on_cubecl_matches_flex() {
    passes(Checked::Classifier.step_matches_flex(false));
}

#[test]
fn an_ogm_step_of_the_tsm_classifier_on_cubecl_matches_flex() {
    passes(Checked::TsmClassifier.step_matches_flex(false));
}

#[test]
fn an_ogm_step_of_the_localizer_on_cubecl_matches_flex() {
    passes(Checked::Localizer.step_matches_flex(false));
}

#[test]
fn an_ogm_step_of_the_psp_localizer_on_cubecl_matches_flex() {
    passes(Checked::PspLocalizer.step_matches_flex(false));
}

#[test]
fn ge_noise_drawn_on_cubecl_has_the_rule_s_distribution() {
    passes(ge_noise_has_the_rule_s_distribution());
}

/// The planted fault (`bench-trainer --check --plant-fault`) is caught, so a GPU check that
/// passes has compared something.
#[test]
fn a_planted_fault_in_the_cubecl_step_is_caught() {
    let e = Checked::Classifier.step_matches_flex(true).expect_err("a moved logit must fail the check");
    assert!(e.0.contains("fused logits"), "{e}");
}
