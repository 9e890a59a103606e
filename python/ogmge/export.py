"""Exports a dataset's shards to the on-disk layouts the reference programs read, so they run
unmodified on this toolkit's preprocessing. Frames are the shards' JPEG bytes, written as they are
(never re-encoded); spectrograms are the shards' float32 matrices, in the shard's shape.

`ogm-ge`: OGM-GE's `dataset/dataset.py::AVDataset` (its KS/AVE loader, the one that reads
precomputed spectrograms), for `--dataset <name>` with the output at `data/<name>/`:

    <out>/stat.txt                     class names, one per line, in the shards' order
    <out>/my_train.txt, my_test.txt    "<class name>,<clip id>" per clip (my_val.txt too, if any)
    <out>/audio_spec/<clip id>.pkl     pickle of the float32 spectrogram
    <out>/visual/<clip id>/frame_00001.jpg ...   the clip's frames, in time order

`balancebenchmark`: BalanceBenchmark's dataset classes, one flavour per class:

    ks (KineticsSoundsDataset; any dataset):
        <out>/<split>.txt                    "<clip id> <label id>" per clip (csv_path_<split>)
        <out>/<split>/audio/<clip id>.npy    the spectrogram (audio_path_<split>)
        <out>/<split>/visual/<clip id>/frame_00001.jpg ...   (visual_path_<split>)
    cremad (CREMADDataset; CREMA-D's six class codes):
        <out>/train.csv, test.csv            "<clip id>,<class code>" (train_txt, test_txt)
        <out>/audio/<clip id>.pt             torch.save of the float32 spectrogram (audio_path: <out>/audio/)
        <out>/visual/<clip id>/frame_00001.jpg ...   (visual_path: <out>/visual/)
    vggsound (VGGSoundDataset; clip ids "<ytid>_<start>"):
        <out>/vggsound.csv                   "<ytid>,<start>,<class name>,<train|test>" (csv_root), train rows first in label order
        <out>/<split>/audio/<clip id>.npy    (audio_<split>_root)
        <out>/<split>/video/<clip id>/frame_00001.jpg ...   (video_<split>_root)
"""

import csv
import pickle
import warnings
from pathlib import Path

import numpy as np

from .shards import open_splits

LAYOUTS = ("ogm-ge", "balancebenchmark")
FLAVOURS = ("ks", "cremad", "vggsound")
CREMAD_CODES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


# The clips each BalanceBenchmark dataset class leaves out when it lists its data: (keeps a clip
# of n frames, the rule in words). Its file and line, at commit 4c1482f.
READER_RULES = {
    "ks": (lambda n: n > 3, "KineticsSoundsDataset keeps clips with more than 3 frames (balancemm/datasets/KS_dataset.py L38)"),
    "vggsound": (lambda n: n > 3, "VGGSoundDataset keeps clips with more than 3 frames (balancemm/datasets/VGG_dataset.py L49, L61)"),
    "cremad": (lambda n: n >= 2, "CREMADDataset keeps clips with at least `fps` frames, 2 in BB's config (cremad_dataset.py L35; configs/dataset_config.yaml L55)"),
}


def reader_drops(splits, flavour: str) -> dict:
    """Per split, how many clips `flavour`'s dataset class would leave out by its frame rule."""
    keeps, _ = READER_RULES[flavour]
    return {split: sum(1 for n in shards.frame_counts() if not keeps(n)) for split, shards in splits.items()}


def _safe_id(clip_id: str) -> str:
    # Clip ids never escape their root (datasets::clip_id); a path-like id becomes nested folders.
    if clip_id.startswith("/") or ".." in Path(clip_id).parts:
        raise ValueError(f"clip id {clip_id!r} is not a relative path")
    return clip_id


def _frames(folder: Path, row):
    folder.mkdir(parents=True, exist_ok=True)
    for k, data in enumerate(row.frames):
        (folder / f"frame_{k + 1:05d}.jpg").write_bytes(data)


def _write_new(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", newline="")


def default_flavour(dataset: str) -> str:
    return {"cremad": "cremad", "vggsound": "vggsound"}.get(dataset.replace("-", "").replace("_", "").lower(), "ks")


def export(shards_root, out, layout: str, flavour=None, progress=None, force=False) -> dict:
    """Writes `layout` under `out` (which must not exist yet, or be empty). Returns counts.
    A BalanceBenchmark flavour whose dataset class would leave clips out (too few frames) warns
    with the rule and the count; if it would leave out every clip of a split, nothing is written
    (a ValueError) unless `force`."""
    root, out = Path(shards_root), Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: export into a new folder")
    splits = open_splits(root)
    first = next(iter(splits.values()))
    if layout == "ogm-ge":
        return _ogm_ge(splits, out, first.classes, progress)
    if layout == "balancebenchmark":
        flavour = flavour or default_flavour(first.meta.dataset)
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r} (one of {', '.join(FLAVOURS)})")
        drops = reader_drops(splits, flavour)
        if any(drops.values()):
            rule = READER_RULES[flavour][1]
            said = ", ".join(f"{n} of {len(splits[s])} {s}" for s, n in drops.items())
            if any(n == len(splits[s]) for s, n in drops.items()) and not force:
                raise ValueError(f"{rule}: it would load none of the clips of a split ({said} left out); "
                                 "prepare the shards with more frames per clip, or force the export")
            warnings.warn(f"{rule}: it will leave out {said} clips", stacklevel=2)
        return {"ks": _bb_ks, "cremad": _bb_cremad, "vggsound": _bb_vggsound}[flavour](splits, out, first.classes, progress)
    raise ValueError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")


def _tick(progress):
    if progress is not None:
        progress()


def _ogm_ge(splits, out, classes, progress):
    out.mkdir(parents=True, exist_ok=True)
    with _write_new(out / "stat.txt") as f:
        csv.writer(f, lineterminator="\n").writerows([c] for c in classes)
    counts = {}
    for split, shards in splits.items():
        with _write_new(out / f"my_{split}.txt") as f:
            w = csv.writer(f, lineterminator="\n")
            for row in shards:
                cid = _safe_id(row.clip_id)
                w.writerow([row.label_name, cid])
                spec = out / "audio_spec" / f"{cid}.pkl"
                spec.parent.mkdir(parents=True, exist_ok=True)
                with open(spec, "wb") as p:
                    pickle.dump(np.asarray(row.audio, dtype=np.float32), p, protocol=4)
                _frames(out / "visual" / cid, row)
                _tick(progress)
        counts[split] = len(shards)
    return counts


def _bb_ks(splits, out, classes, progress):
    counts = {}
    for split, shards in splits.items():
        with _write_new(out / f"{split}.txt") as f:
            for row in shards:
                cid = _safe_id(row.clip_id)
                if " " in cid:
                    raise ValueError(f"clip id {cid!r} has a space: BalanceBenchmark's list files split on spaces")
                f.write(f"{cid} {row.label}\n")
                a = out / split / "audio" / f"{cid}.npy"
                a.parent.mkdir(parents=True, exist_ok=True)
                np.save(a, np.asarray(row.audio, dtype=np.float32))
                _frames(out / split / "visual" / cid, row)
                _tick(progress)
        counts[split] = len(shards)
    return counts


def _bb_cremad(splits, out, classes, progress):
    try:
        import torch
    except ImportError as e:
        raise RuntimeError("the cremad flavour writes .pt files: install torch (pip install 'ogmge[torch]')") from e
    unknown = [c for c in classes if c not in CREMAD_CODES]
    if unknown:
        raise ValueError(f"the cremad flavour needs CREMA-D's class codes {CREMAD_CODES}; these shards have {unknown}")
    counts = {}
    for split, shards in splits.items():
        name = {"train": "train.csv", "test": "test.csv"}.get(split, f"{split}.csv")
        with _write_new(out / name) as f:
            w = csv.writer(f, lineterminator="\n")
            for row in shards:
                cid = _safe_id(row.clip_id)
                w.writerow([cid, row.label_name])
                a = out / "audio" / f"{cid}.pt"
                a.parent.mkdir(parents=True, exist_ok=True)
                torch.save(torch.from_numpy(np.array(row.audio, dtype=np.float32)), a)
                _frames(out / "visual" / cid, row)
                _tick(progress)
        counts[split] = len(shards)
    return counts


def _bb_vggsound(splits, out, classes, progress):
    rows = []
    counts = {}
    for split, shards in splits.items():
        if split == "val":
            continue  # VGGSoundDataset knows train and test only
        for row in shards:
            cid = _safe_id(row.clip_id)
            ytid, sep, start = cid.rpartition("_")
            if not sep or not ytid:
                raise ValueError(f"clip id {cid!r} is not '<ytid>_<start>': VGGSoundDataset joins its first two CSV columns with '_'")
            a = out / split / "audio" / f"{cid}.npy"
            a.parent.mkdir(parents=True, exist_ok=True)
            np.save(a, np.asarray(row.audio, dtype=np.float32))
            _frames(out / split / "video" / cid, row)
            rows.append((0 if split == "train" else 1, row.label, ytid, start, row.label_name, split))
            _tick(progress)
        counts[split] = len(shards)
    # VGGSoundDataset numbers classes by first appearance among train rows: train rows first, in
    # label order, make its ids the shards' ids whenever every class has a train clip.
    rows.sort(key=lambda r: (r[0], r[1]))
    with _write_new(out / "vggsound.csv") as f:
        csv.writer(f, lineterminator="\n").writerows(r[2:] for r in rows)
    return counts
