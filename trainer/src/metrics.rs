//! Evaluation metrics: top-1 accuracy, macro-F1 and mAP (per-class average precision over softmax
//! scores, averaged over classes that have positives, as sklearn's `average_precision_score`).

use serde::{Deserialize, Serialize};

/// Scores of one head on an evaluation set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub map: f64,
}

/// Each modality's contribution to the fused model's accuracy: its Shapley value over the two
/// modalities, from the fused head's accuracy with the other modality's pooled features zeroed
/// (`audio_only`, `visual_only`), with both zeroed (`neither`) and with both (`both`):
/// `audio = ((audio_only - neither) + (both - visual_only)) / 2`, and symmetrically, so
/// `audio + visual = both - neither`. BalanceBenchmark's default (`include_empty = False`) reports
/// the second term alone, `both - visual_only`; that is the `marginal_*` pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub audio: f64,
    pub visual: f64,
    pub marginal_audio: f64,
    pub marginal_visual: f64,
    pub both: f64,
    pub audio_only: f64,
    pub visual_only: f64,
    pub neither: f64,
}

impl Contribution {
    pub fn from_accuracies(both: f64, audio_only: f64, visual_only: f64, neither: f64) -> Self {
        Self {
            audio: 0.5 * ((audio_only - neither) + (both - visual_only)),
            visual: 0.5 * ((visual_only - neither) + (both - audio_only)),
            marginal_audio: both - visual_only,
            marginal_visual: both - audio_only,
            both,
            audio_only,
            visual_only,
            neither,
        }
    }
}

/// Top-1 accuracy of row-major `[n, classes]` logits.
pub fn accuracy(logits: &[f32], labels: &[i64], classes: usize) -> f64 {
    let right = labels.iter().enumerate().filter(|&(i, &y)| argmax(&logits[i * classes..(i + 1) * classes]) == y as usize).count();
    right as f64 / labels.len().max(1) as f64
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let e: Vec<f64> = row.iter().map(|&x| (f64::from(x) - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// Average precision of `scores` for binary `positive` labels (sklearn's step-wise definition).
pub fn average_precision(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let total = positive.iter().filter(|&&p| p).count();
    if total == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // Ties share one threshold.
        let s = scores[order[i]];
        // (`total_cmp`: a NaN score is a tie with itself, not a threshold never reached.)
        while i < order.len() && scores[order[i]].total_cmp(&s).is_eq() {
            if positive[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let recall = tp as f64 / total as f64;
        ap += (recall - prev_recall) * tp as f64 / (tp + fp) as f64;
        prev_recall = recall;
    }
    Some(ap)
}

/// Metrics of row-major `[N, classes]` logits against labels.
pub fn evaluate(logits: &[f32], labels: &[i64], classes: usize) -> HeadMetrics {
    let n = labels.len();
    if n == 0 {
        return HeadMetrics::default();
    }
    let preds: Vec<usize> = (0..n).map(|i| argmax(&logits[i * classes..(i + 1) * classes])).collect();
    let correct = preds.iter().zip(labels).filter(|(p, &y)| **p as i64 == y).count();
    let mut f1s = Vec::new();
    for c in 0..classes {
        let tp = preds.iter().zip(labels).filter(|(p, &y)| **p == c && y as usize == c).count() as f64;
        let fp = preds.iter().zip(labels).filter(|(p, &y)| **p == c && y as usize != c).count() as f64;
        let fn_ = preds.iter().zip(labels).filter(|(p, &y)| **p != c && y as usize == c).count() as f64;
        if tp + fp + fn_ > 0.0 {
            f1s.push(if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fn_) });
        }
    }
    let probs: Vec<Vec<f64>> = (0..n).map(|i| softmax(&logits[i * classes..(i + 1) * classes])).collect();
    let aps: Vec<f64> = (0..classes)
        .filter_map(|c| {
            let scores: Vec<f64> = probs.iter().map(|p| p[c]).collect();
            let pos: Vec<bool> = labels.iter().map(|&y| y as usize == c).collect();
            average_precision(&scores, &pos)
        })
        .collect();
    HeadMetrics {
        accuracy: correct as f64 / n as f64,
        macro_f1: f1s.iter().sum::<f64>() / f1s.len().max(1) as f64,
        map: aps.iter().sum::<f64>() / aps.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_cases() {
        // sklearn.metrics.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((ap - 0.8333333333).abs() < 1e-9, "{ap}");
        assert_eq!(average_precision(&[0.3, 0.2], &[true, false]), Some(1.0));
        assert_eq!(average_precision(&[0.3, 0.2], &[false, false]), None);
    }

    #[test]
    fn accuracy_and_f1() {
        // 3 samples, 2 classes: predictions 0, 1, 1; labels 0, 1, 0.
        let logits = [2.0, 1.0, 0.0, 3.0, 0.5, 0.6];
        let m = evaluate(&logits, &[0, 1, 0], 2);
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
        // class 0: tp 1 fp 0 fn 1 -> 2/3; class 1: tp 1 fp 1 fn 0 -> 2/3.
        assert!((m.macro_f1 - 2.0 / 3.0).abs() < 1e-12);
    }
}

/// Segment-level accuracy of one head: over all segments, event segments, background segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentAccuracy {
    pub all: f64,
    pub event: f64,
    pub background: f64,
}

/// Segment accuracy of `[n, classes]` logits against `labels` (argmax per segment, as AVGA's and
/// PSP's `compute_acc`), also split by whether the truth is an event or `background`.
pub fn segment_accuracy(logits: &[f32], labels: &[i64], classes: usize, background: i64) -> SegmentAccuracy {
    let (mut hit, mut ev, mut ev_hit, mut bg, mut bg_hit) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for (i, &y) in labels.iter().enumerate() {
        let row = &logits[i * classes..(i + 1) * classes];
        let pred = argmax(row) as i64;
        let ok = usize::from(pred == y);
        hit += ok;
        if y == background {
            bg += 1;
            bg_hit += ok;
        } else {
            ev += 1;
            ev_hit += ok;
        }
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    SegmentAccuracy { all: frac(hit, labels.len()), event: frac(ev_hit, ev), background: frac(bg_hit, bg) }
}
