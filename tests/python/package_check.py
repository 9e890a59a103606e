"""Checks of the Python package (`python/ogmge`) against the Rust side; run by
`tests/tests/python_package.rs`, which prepares the shards, the loader dumps and the run.

    package_check.py loader <synthetic shards> <ave shards> <dumps>
    package_check.py export <synthetic shards> <scratch folder>
    package_check.py tensorboard <run folder>
"""

import json
import warnings
import os
import sys
from pathlib import Path

import numpy as np

import ogmge
from ogmge.export import export

HERE = Path(__file__).resolve().parent
# The package under test is the repository's (installed editable by `cargo xtask`).
assert Path(ogmge.__file__).resolve().is_relative_to(HERE.parent.parent / "python"), ogmge.__file__

STD255 = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None] * 255.0
# JPEG decoders: the trainer decodes with the `image` crate (zune-jpeg), PIL with libjpeg-turbo;
# resizing: `image`'s Triangle filter vs PIL's BILINEAR (both antialiased, separable). Measured
# differences on these shards: at most 3 8-bit levels (mean 0.4); the bound is 4.
LEVELS = 4.0


def load_dump(dumps, name):
    meta = json.loads((dumps / f"{name}.json").read_text())
    audio = np.fromfile(dumps / f"{name}.audio.f32", dtype="<f4").reshape(meta["audio_shape"])
    frames = np.fromfile(dumps / f"{name}.frames.f32", dtype="<f4").reshape(meta["frames_shape"])
    return meta, audio, frames


def levels(a, b):
    """|a - b| in 8-bit levels of the original pixels (normalised values times std * 255)."""
    return np.abs(a - b) * STD255


def check_frames(what, ours, theirs, worst):
    d = levels(ours, theirs)
    assert d.max() <= LEVELS, f"{what}: frames differ by {d.max():.2f} levels (> {LEVELS})"
    worst.append((d.max(), d.mean()))
    lo, hi = (0 - 0.485) / 0.229 - 1e-4, (1 - 0.406) / 0.225 + 1e-4
    assert lo <= ours.min() and ours.max() <= hi, f"{what}: values outside the normalised range"


def loader(synthetic, ave, dumps):
    for mode in ("eval", "train"):
        train = mode == "train"
        meta, audio, frames = load_dump(dumps, f"clips-{mode}")
        ds = ogmge.ClipDataset(synthetic, "test", frames=3, image_size=40, train=train, seed=7, audio_crop=100)
        ds.set_epoch(2)
        ids = meta["clip_ids"]
        assert sorted(ids) == sorted(ds.shards.clip_ids), "every row once"
        if not train:
            assert ids == ds.shards.clip_ids, "eval: the trainer's order is the shards' order"
        assert [ds.shards.clip_ids[i] for i in ds.epoch_order(shuffle_buffer=8)] == ids, f"{mode}: the trainer's epoch order"
        pos = {c: i for i, c in enumerate(ds.shards.clip_ids)}
        worst = []
        for k, cid in enumerate(ids):
            item = ds[pos[cid]]
            assert item["clip_id"] == cid and item["label"] == meta["labels"][k]
            assert item["audio"].shape == audio[k].shape == (1, 65, 100), item["audio"].shape
            assert np.array_equal(item["audio"], audio[k]), f"{mode} {cid}: audio (crop) differs"
            assert item["frames"].shape == frames[k].shape == (3, 3, 40, 40)
            n = len(ds.shards.row(pos[cid]).frames)
            for i, p in enumerate(item["frame_indices"]):
                lo, hi = i * n / 3, (i + 1) * n / 3
                assert lo - 1 < p < hi and (train or p == int((lo + hi) / 2)), f"{cid}: frame {p} outside segment {i} of {n}"
            check_frames(f"clips {mode} {cid}", item["frames"], frames[k], worst)
        full = ogmge.ClipDataset(synthetic, "test", frames=3, image_size=40, train=train, seed=7)
        assert full[0]["audio"].shape == (1, 65, 251)
        print(f"clips {mode}: {len(ids)} clips, audio equal, frames within {max(w[0] for w in worst):.2f} levels (mean {np.mean([w[1] for w in worst]):.3f})")

        meta, audio, frames = load_dump(dumps, f"segments-{mode}")
        ds = ogmge.SegmentDataset(ave, "test", segments=10, image_size=40, train=train, seed=7)
        ds.set_epoch(2)
        pos = {c: i for i, c in enumerate(ds.shards.clip_ids)}
        assert [ds.shards.clip_ids[i] for i in ds.epoch_order(shuffle_buffer=8)] == meta["clip_ids"], f"{mode}: the trainer's epoch order"
        labels = np.asarray(meta["labels"]).reshape(len(meta["clip_ids"]), 10)
        worst = []
        for k, cid in enumerate(meta["clip_ids"]):
            item = ds[pos[cid]]
            assert np.array_equal(item["segment_labels"], labels[k])
            assert item["audio"].shape == audio[k].shape and np.array_equal(item["audio"], audio[k]), f"{cid}: segment audio differs"
            check_frames(f"segments {mode} {cid}", item["frames"], frames[k], worst)
        print(f"segments {mode}: {len(pos)} clips, {ds.ranges[:2]}..., audio equal, frames within {max(w[0] for w in worst):.2f} levels")

    import torch

    t = ogmge.TorchClipDataset(synthetic, "test", train=True, frames=3, image_size=40, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
        assert t[0]["audio"].dtype == torch.float32
    sampler = ogmge.EpochSampler(t, shuffle_buffer=8)
    sampler.set_epoch(2)
    loader = torch.utils.data.DataLoader(t, batch_size=4, sampler=sampler, num_workers=2)
    batches = list(loader)
    assert [c for b in batches for c in b["clip_id"]] == load_dump(dumps, "clips-train")[0]["clip_ids"], "DataLoader + EpochSampler: the trainer's order"
    assert batches[0]["frames"].shape == (4, 3, 3, 40, 40) and batches[0]["frames"].dtype == torch.float32
    print("loader ok")


def eval_transform():
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(size=(224, 224)), transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def decoded(data):
    import io

    from PIL import Image

    return eval_transform()(Image.open(io.BytesIO(data)).convert("RGB"))


def frame_number(path):
    return int(Path(path).stem.split("_")[-1])


def export_check(synthetic, scratch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    import reference_datasets as ref

    shards = {s: ogmge.ShardSet(synthetic, s) for s in ("train", "test")}
    rows = {s: {r.clip_id: r for r in shards[s]} for s in shards}

    # OGM-GE: data/<dataset>/...
    export(synthetic, scratch / "ogm" / "synthetic", "ogm-ge")
    for mode in ("train", "test"):
        ds = ref.OgmAVDataset("synthetic", str(scratch / "ogm") + "/", mode)
        assert sorted(ds.av_files) == sorted(rows[mode]), mode
        for i in range(len(ds)):
            spec, image_n, label, cid = ds[i]
            r = rows[mode][cid]
            assert np.array_equal(spec, r.audio) and spec.dtype == np.float32
            assert ds.classes[label] == r.label_name, "OGM-GE numbers the sorted class names"
            assert image_n.shape == (3, 3, 224, 224)
            if mode == "test":
                seg = len(r.frames) // 3
                for k in range(3):
                    assert torch.equal(image_n[:, k], decoded(r.frames[seg * k])), f"{cid}: frame {k}"
    print(f"ogm-ge: AVDataset reads {len(rows['train'])} train / {len(rows['test'])} test clips, spectrograms equal, frames seg*i+1")

    # BalanceBenchmark, KineticsSoundsDataset.
    out = scratch / "bb-ks"
    export(synthetic, out, "balancebenchmark", "ks")
    args = {"mode": "test"}
    for s in ("train", "test"):
        args.update({f"csv_path_{s}": str(out / f"{s}.txt"), f"audio_path_{s}": str(out / s / "audio"), f"visual_path_{s}": str(out / s / "visual")})
    for mode in ("train", "test"):
        ds = ref.BbKineticsSoundsDataset(dict(args, mode=mode))
        assert sorted(ds.data) == sorted(rows[mode])
        for i in range(len(ds)):
            item, r = ds[i], rows[mode][ds.data[i]]
            assert np.array_equal(item["audio"][0], r.audio) and item["label"] == r.label
            if mode == "test":
                n = len(r.frames)
                seg = n // 3
                for k in range(3):
                    t = k * seg + max(seg // 2, 1) if n > 6 else 1
                    assert torch.equal(item["visual"][:, k], decoded(r.frames[t - 1])), f"{r.clip_id}: frame {k}"
    print("balancebenchmark ks: KineticsSoundsDataset reads every clip, labels and spectrograms equal")

    # Clips the reader will drop: KineticsSoundsDataset keeps clips with more than 3 frames. With
    # 2 frames in every clip the export refuses (writing nothing) unless forced; with some clips
    # short it warns with their count, and the class loads exactly the others.
    def short_copy(name, short):
        dst = scratch / name
        for s in ("train", "test"):
            (dst / s).mkdir(parents=True)
            for f in shards[s].files:
                t = pq.read_table(f)
                i = t.schema.get_field_index("frames")
                frames = [fr[:2] if short(cid) else fr for cid, fr in zip(t.column("clip_id").to_pylist(), t.column("frames").to_pylist())]
                t = t.set_column(i, t.schema.field(i), pa.array(frames, type=t.schema.field(i).type))
                pq.write_table(t, dst / s / f.name)
        return dst
    two = short_copy("two-frames", lambda cid: True)
    try:
        export(two, scratch / "bb-ks-two", "balancebenchmark", "ks")
        raise AssertionError("an export every reader clip would drop went through")
    except ValueError as e:
        assert "more than 3 frames" in str(e) and f"{len(rows['train'])} of {len(rows['train'])} train" in str(e), e
    assert not (scratch / "bb-ks-two").exists()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        export(two, scratch / "bb-ks-two", "balancebenchmark", "ks", force=True)
    assert any("more than 3 frames" in str(w.message) for w in said), [str(w.message) for w in said]
    assert len(ref.BbKineticsSoundsDataset(dict(args, mode="train", csv_path_train=str(scratch / "bb-ks-two" / "train.txt"),
                                                audio_path_train=str(scratch / "bb-ks-two" / "train" / "audio"),
                                                visual_path_train=str(scratch / "bb-ks-two" / "train" / "visual"))).data) == 0
    odd = sorted(rows["train"])[::2]
    half = short_copy("some-short", lambda cid: cid in odd)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        export(half, scratch / "bb-ks-half", "balancebenchmark", "ks")
    said = [str(w.message) for w in said if "more than 3 frames" in str(w.message)]
    assert len(said) == 1 and f"{len(odd)} of {len(rows['train'])} train" in said[0] and f"0 of {len(rows['test'])} test" in said[0], said
    out = scratch / "bb-ks-half"
    ds = ref.BbKineticsSoundsDataset(dict(args, mode="train", csv_path_train=str(out / "train.txt"), audio_path_train=str(out / "train" / "audio"),
                                          visual_path_train=str(out / "train" / "visual")))
    assert sorted(ds.data) == sorted(set(rows["train"]) - set(odd))
    print(f"balancebenchmark ks: 2-frame clips refused ({len(rows['train'])} train), forced export warned; {len(odd)} short clips warned and dropped")

    # BalanceBenchmark, VGGSoundDataset (labels by first appearance: the export makes them ours).
    out = scratch / "bb-vgg"
    export(synthetic, out, "balancebenchmark", "vggsound")
    base = {"csv_root": str(out / "vggsound.csv"), "use_video_frames": 3}
    for s in ("train", "test"):
        base.update({f"video_{s}_root": str(out / s / "video"), f"audio_{s}_root": str(out / s / "audio")})
    for mode in ("train", "test"):
        ds = ref.BbVGGSoundDataset(dict(base, mode=mode))
        assert ds.classes == shards["train"].classes, ds.classes
        ids = [Path(v).name for v in ds.video]
        assert sorted(ids) == sorted(rows[mode])
        for i in range(len(ds)):
            item, r = ds[i], rows[mode][ids[i]]
            assert torch.equal(item["audio"][0], torch.from_numpy(r.audio)) and item["label"] == r.label
            if mode == "test":
                n, seg = len(r.frames), len(r.frames) // 3
                for k in range(3):
                    t = k * seg + max(seg // 2, 1) if n > 6 else 1
                    assert torch.equal(item["visual"][:, k], decoded(r.frames[t - 1]))
    print("balancebenchmark vggsound: VGGSoundDataset reads every clip, its label ids are the shards'")

    # BalanceBenchmark, CREMADDataset: its class codes are fixed, so the synthetic shards are
    # relabelled with them first (a CREMA-D-shaped copy: same rows, CREMA-D's classes).
    codes = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]
    cremad = scratch / "cremad-shards"
    for s in ("train", "test"):
        (cremad / s).mkdir(parents=True)
        for f in shards[s].files:
            t = pq.read_table(f)
            md = dict(t.schema.metadata)
            md[b"ogmge.classes"] = json.dumps(codes).encode()
            md[b"ogmge.dataset"] = b"cremad"
            names = pa.array([codes[x] for x in t.column("label").to_pylist()])
            t = t.set_column(t.schema.get_field_index("label_name"), "label_name", names).replace_schema_metadata(md)
            pq.write_table(t, cremad / s / f.name)
    try:
        export(synthetic, scratch / "bb-refused", "balancebenchmark", "cremad")
        raise AssertionError("the cremad flavour took classes that are not CREMA-D's")
    except ValueError as e:
        assert "CREMA-D" in str(e), e
    out = scratch / "bb-cremad"
    export(cremad, out, "balancebenchmark")  # the flavour follows the dataset
    try:
        export(cremad, out, "balancebenchmark")
        raise AssertionError("an export overwrote a folder")
    except FileExistsError:
        pass
    for mode in ("train", "test"):
        a = {"mode": mode, "fps": 2, "visual_path": str(out / "visual") + "/", "audio_path": str(out / "audio") + "/"}
        ds = ref.BbCREMADDataset(dict(a, train_txt=str(out / "train.csv"), test_txt=str(out / "test.csv")))
        assert sorted(ds.data) == sorted(rows[mode])
        for i in range(len(ds)):
            item, r = ds[i], rows[mode][ds.data[i]]
            assert torch.equal(item["audio"][0], torch.from_numpy(r.audio)) and item["label"] == r.label
            if mode == "test":
                # Its frames are `os.listdir` order (unsorted): whichever file it picks must hold
                # the frame its name says.
                listed = os.listdir(out / "visual" / r.clip_id)
                seg = len(listed) // 2
                for k in range(2):
                    name = listed[k * seg + seg // 2]
                    assert torch.equal(item["visual"][:, k], decoded(r.frames[frame_number(name) - 1]))
    print("balancebenchmark cremad: CREMADDataset reads every clip from .pt files")
    print("export ok")


def tensorboard(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {}

    def walk(prefix, v, epoch):
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return
        if isinstance(v, (int, float)):
            expected.setdefault(prefix, {})[epoch] = float(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                tag = f"{prefix}/{k}" if prefix else k
                if tag != "epoch":
                    walk(tag, x, epoch)

    lines = [json.loads(line) for line in (run / "epochs.jsonl").read_text().splitlines()]
    for line in lines:
        walk("", line, line["epoch"])
    assert tags == set(expected), f"tags: missing {set(expected) - tags}, extra {tags - set(expected)}"
    for tag, by_epoch in expected.items():
        got = {e.step: e.value for e in acc.Scalars(tag)}
        assert got.keys() == by_epoch.keys(), f"{tag}: steps {sorted(got)} vs epochs {sorted(by_epoch)}"
        for epoch, value in by_epoch.items():
            assert got[epoch] == np.float32(value), f"{tag} at epoch {epoch}: {got[epoch]} vs {value}"
    for t in ("test/fused/accuracy", "test/audio/accuracy", "test/visual/accuracy", "train_loss", "mean_k_a", "mean_k_v", "mean_ratio_a"):
        assert t in tags, t
    print(f"tensorboard ok: {len(tags)} scalars x {len(lines)} epochs, every number of epochs.jsonl")


if __name__ == "__main__":
    what, args = sys.argv[1], [Path(a) for a in sys.argv[2:]]
    sys.path.insert(0, str(HERE))
    {"loader": loader, "export": export_check, "tensorboard": tensorboard}[what](*args)
