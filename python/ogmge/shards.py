"""The shards of one split, read with pyarrow: the metadata every shard carries (dataset, preset,
classes, audio shape) and random access to rows, one row group cached at a time."""

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .rng import Rng, fnv1a

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ShardMeta:
    dataset: str
    split: str
    preset: dict
    classes: list
    audio_shape: tuple
    audio_dims: tuple


def read_meta(path) -> ShardMeta:
    schema = pq.read_schema(path)
    md = schema.metadata or {}
    if b"ogmge.classes" not in md:
        raise ValueError(f"{path}: not a shard of this toolkit (no ogmge.* metadata)")
    shape = json.loads(md[b"ogmge.audio_shape"])
    return ShardMeta(
        dataset=md[b"ogmge.dataset"].decode(),
        split=md[b"ogmge.split"].decode(),
        preset=json.loads(md[b"ogmge.preset"]),
        classes=json.loads(md[b"ogmge.classes"]),
        audio_shape=tuple(shape["shape"]),
        audio_dims=tuple(shape["dim_names"]),
    )


def open_splits(root) -> dict:
    """Every split of `root` that has shards: {split: ShardSet}, in train, val, test order."""
    root = Path(root)
    out = {}
    for split in SPLITS:
        d = root / split
        if d.is_dir() and any(p.suffix == ".parquet" and not p.name.startswith(".") for p in d.iterdir()):
            out[split] = ShardSet(root, split)
    if not out:
        raise FileNotFoundError(f"no shards under {root} (expected {root}/train/*.parquet, ...)")
    return out


def held_out(clip_id: str, val_fraction: float) -> bool:
    """The trainer's validation hold-out (`--val-fraction`): a stable hash of the clip id."""
    return fnv1a(clip_id) % 10_000 < int(val_fraction * 10_000)


@dataclass
class Row:
    clip_id: str
    label: int
    label_name: str
    audio: np.ndarray  # float32, the shard's audio shape
    frames: list  # JPEG bytes, in time order
    segment_labels: object  # list of int (AVE) or None


class ShardSet:
    """`<root>/<split>/*.parquet` (hidden files ignored), in file order: the order of the trainer's
    evaluation batches. `subset`: "all", "fit" (rows outside the hold-out of `val_fraction`) or
    "holdout" (its rows), as the trainer's `--val-fraction`."""

    COLUMNS = ["clip_id", "label", "label_name", "audio", "frames", "segment_labels"]

    def __init__(self, root, split: str, subset: str = "all", val_fraction: float = 0.0):
        self.root = Path(root)
        d = self.root / split
        self.files = sorted(p for p in d.glob("*.parquet") if not p.name.startswith("."))
        if not self.files:
            raise FileNotFoundError(f"no {split} shards in {d}")
        self.meta = read_meta(self.files[0])
        for f in self.files[1:]:
            m = read_meta(f)
            if (m.classes, m.audio_shape, m.preset) != (self.meta.classes, self.meta.audio_shape, self.meta.preset):
                raise ValueError(f"shard {f}: made by another preprocessing run than {self.files[0]}")
        if subset not in ("all", "fit", "holdout"):
            raise ValueError(f"subset must be all, fit or holdout, not {subset!r}")
        # (file, row group, row in group) of every kept row, in file order; and per row group
        # (every one of every file, as the trainer's loader lists them) its kept rows' positions.
        self.index = []
        self.clip_ids = []
        self.labels = []
        self.groups = []
        for fi, f in enumerate(self.files):
            pf = pq.ParquetFile(f)
            for g in range(pf.num_row_groups):
                ids = pf.read_row_group(g, columns=["clip_id", "label"])
                kept = []
                for r, (cid, lab) in enumerate(zip(ids.column("clip_id").to_pylist(), ids.column("label").to_pylist())):
                    keep = subset == "all" or (held_out(cid, val_fraction) == (subset == "holdout"))
                    if keep:
                        kept.append(len(self.index))
                        self.index.append((fi, g, r))
                        self.clip_ids.append(cid)
                        self.labels.append(lab)
                self.groups.append(kept)
        self._cache = OrderedDict()
        self.cache_groups = 4

    @property
    def classes(self):
        return self.meta.classes

    def __len__(self):
        return len(self.index)

    def row(self, i: int) -> Row:
        fi, g, r = self.index[i]
        table = self._cache.get((fi, g))
        if table is None:
            table = pq.ParquetFile(self.files[fi]).read_row_group(g, columns=self.COLUMNS)
            self._cache[(fi, g)] = table
            while len(self._cache) > self.cache_groups:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end((fi, g))
        cid = table.column("clip_id")[r].as_py()
        audio = table.column("audio")[r].values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        frames = [f["bytes"] for f in table.column("frames")[r].as_py()]
        seg = table.column("segment_labels")[r].as_py()
        label = table.column("label")[r].as_py()
        if label is None or not 0 <= label < len(self.meta.classes):
            raise ValueError(f"{self.files[fi]}: clip {cid}: label {label} out of range (0..{len(self.meta.classes) - 1})")
        return Row(cid, label, table.column("label_name")[r].as_py(), audio.reshape(self.meta.audio_shape), frames, seg)

    def __iter__(self):
        for i in range(len(self)):
            yield self.row(i)

    def frame_counts(self):
        """Each kept row's number of frames, in order (the frames column alone is read)."""
        lengths, out = {}, []
        for fi, g, r in self.index:
            if (fi, g) not in lengths:
                col = pq.ParquetFile(self.files[fi]).read_row_group(g, columns=["frames"]).column("frames")
                lengths[(fi, g)] = pc.list_value_length(col).to_pylist()
            out.append(lengths[(fi, g)][r] or 0)
        return out

    def epoch_order(self, epoch: int, seed: int = 0, train: bool = True, shuffle_buffer: int = 1024):
        """The rows' positions in the order the trainer's loader visits them in `epoch`
        (`ShardSet::epoch_with`): row groups shuffled from (seed, epoch), rows through a shuffle
        buffer; in eval, file order. Cut into `batch_size` runs, these are the trainer's batches;
        read in this order, rows come from a few row groups at a time (the cache's)."""
        order = list(range(len(self.groups)))
        rng = Rng.derive([seed, epoch, 1])
        if train:
            rng.shuffle(order)
        cap = max(shuffle_buffer, 1) if train else 1
        buffer, out = [], []

        def take():
            i = rng.below(len(buffer)) if train else 0
            if train:
                buffer[i], buffer[-1] = buffer[-1], buffer[i]
                out.append(buffer.pop())
            else:
                out.append(buffer.pop(0))

        for gi in order:
            for pos in self.groups[gi]:
                buffer.append(pos)
                while len(buffer) >= cap:
                    take()
        while buffer:
            take()
        return out
