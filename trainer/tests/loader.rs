//! The shard loader: deterministic from (seed, epoch), every row exactly once per epoch, the
//! validation hold-out disjoint from the rows it is carved from.

mod common;

use std::collections::BTreeMap;

use common::shards;
use datasets::Split;
use trainer::data::{LoaderConfig, ShardSet, Subset};

fn cfg(train: bool, seed: u64, subset: Subset) -> LoaderConfig {
    LoaderConfig { batch_size: 8, frames: 3, image_size: 16, train, seed, shuffle_buffer: 16, audio_crop: None, prefetch: 2, subset, drop_last: false }
}

fn epoch_ids(set: &ShardSet, c: &LoaderConfig, epoch: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for b in set.epoch(c, epoch) {
        let b = b.unwrap();
        assert_eq!(b.frames.len(), b.len() * 3 * 3 * 16 * 16);
        assert_eq!(b.audio.len(), b.len() * 24);
        // Audio stays with its clip through the shuffle.
        for (k, id) in b.clip_ids.iter().enumerate() {
            let i: f32 = id[4..].parse().unwrap();
            assert_eq!(b.audio[k * 24], i);
        }
        ids.extend(b.clip_ids);
    }
    ids
}

#[test]
fn every_row_once_per_epoch_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), Split::Train, 61);
    let set = ShardSet::open(dir.path(), Split::Train).unwrap();
    assert_eq!(set.rows(), 61);
    let train = cfg(true, 5, Subset::All);
    let e0 = epoch_ids(&set, &train, 0);
    let mut sorted = e0.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 61, "each row exactly once");
    assert_eq!(e0.len(), 61);
    assert_eq!(epoch_ids(&set, &train, 0), e0, "same seed and epoch, same order");
    assert_ne!(epoch_ids(&set, &train, 1), e0, "another epoch, another order");
    assert_ne!(epoch_ids(&set, &cfg(true, 6, Subset::All), 0), e0, "another seed, another order");
    let eval = epoch_ids(&set, &cfg(false, 5, Subset::All), 0);
    let mut in_order = eval.clone();
    in_order.sort();
    assert_eq!(eval, in_order, "eval reads in shard order");

    // Batches are identical too, augmentation included.
    let a: Vec<_> = set.epoch(&train, 3).into_iter().map(|b| b.unwrap().frames).collect();
    let b: Vec<_> = set.epoch(&train, 3).into_iter().map(|b| b.unwrap().frames).collect();
    assert!(a == b);
}

#[test]
fn the_validation_holdout_is_disjoint_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), Split::Train, 200);
    let set = ShardSet::open(dir.path(), Split::Train).unwrap();
    let fit = epoch_ids(&set, &cfg(true, 1, Subset::Fit { val_fraction: 0.2 }), 0);
    let held = epoch_ids(&set, &cfg(false, 1, Subset::Holdout { val_fraction: 0.2 }), 0);
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    for id in fit.iter().chain(&held) {
        *all.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(all.len(), 200);
    assert!(all.values().all(|&n| n == 1));
    assert!((20..=60).contains(&held.len()), "about 20% held out: {}", held.len());
}
