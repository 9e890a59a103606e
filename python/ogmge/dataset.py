"""What the trainer's loader yields, item by item (`trainer/src/data.rs`, `localize/data.rs`).

`ClipDataset`: a clip's audio matrix `[1, F, T]` (cropped where `audio_crop` says: the middle in
eval, a random start in train), `frames` `[T, 3, size, size]` (eval: segment middles, Resize;
train: a random frame per segment, RandomResizedCrop + flip), ImageNet-normalised float32, and the
label. `SegmentDataset` (AVE): each of the `segments` seconds' spectrogram slice `[S, 1, F, W]`
and frame `[S, 3, size, size]` (resized; train flips the whole clip with p 0.5), and the
per-second labels. Random draws come from `Rng.derive([seed, epoch, fnv1a(clip_id)])` in the
trainer's order, so with the same seed and epoch an item is the trainer's item (`set_epoch`).

Plain NumPy arrays; `TorchClipDataset` / `TorchSegmentDataset` wrap them as
`torch.utils.data.Dataset`s of tensors when torch is importable."""

import math

import numpy as np

from .rng import Rng, fnv1a
from .shards import ShardSet
from .transforms import decode_jpeg, select_frames, transform


class _Base:
    def __init__(self, root, split, *, image_size, train, seed, subset, val_fraction):
        self.shards = ShardSet(root, split, subset=subset, val_fraction=val_fraction)
        self.image_size = image_size
        self.train = train
        self.seed = seed
        self.epoch = 0

    @property
    def classes(self):
        return self.shards.classes

    @property
    def meta(self):
        return self.shards.meta

    def set_epoch(self, epoch: int):
        """The epoch whose random draws `__getitem__` makes (train mode)."""
        self.epoch = epoch

    def __len__(self):
        return len(self.shards)

    def epoch_order(self, shuffle_buffer: int = 1024):
        """Item indices in the trainer's order for the current epoch (`ShardSet.epoch_order`):
        with the trainer's `--seed` and shuffle buffer (1024 by default), consecutive runs of
        `batch_size` are its batches."""
        return self.shards.epoch_order(self.epoch, self.seed, self.train, shuffle_buffer)

    def _rng(self, clip_id):
        return Rng.derive([self.seed, self.epoch, fnv1a(clip_id)])


class ClipDataset(_Base):
    """The classifier's items. `frames`: T; `audio_crop`: time frames kept (VGGSound: 626)."""

    def __init__(self, root, split="train", *, frames=3, image_size=224, train=None, seed=0, audio_crop=None, subset="all", val_fraction=0.0):
        super().__init__(root, split, image_size=image_size, train=(split == "train") if train is None else train, seed=seed, subset=subset, val_fraction=val_fraction)
        self.frames = frames
        self.audio_crop = audio_crop

    def __getitem__(self, i):
        row = self.shards.row(i)
        rng = self._rng(row.clip_id)
        f, t_full = self.meta.audio_shape
        t = t_full if self.audio_crop is None else min(self.audio_crop, t_full)
        start = 0
        if t < t_full:
            start = rng.below(t_full - t + 1) if self.train else (t_full - t) // 2
        audio = np.ascontiguousarray(row.audio[:, start : start + t])[None]
        if not row.frames:
            raise ValueError(f"clip {row.clip_id} has no frames")
        picks = select_frames(len(row.frames), self.frames, self.train, rng)
        frames = np.stack([transform(decode_jpeg(row.frames[p]), self.image_size, self.train, rng) for p in picks])
        return {"audio": audio, "frames": frames, "label": row.label, "clip_id": row.clip_id, "frame_indices": picks}


def _frame_clock(audio_preset):
    """Frames per second of the transform and the time of frame 0's centre, when the preset says."""
    rate = audio_preset.get("sample_rate")
    if rate is None:
        return None
    tr = audio_preset["transform"]
    kind = tr["kind"]
    if kind == "log-stft":
        offset = 0.0 if tr["center"] else tr["n_fft"] / 2.0 / rate
        return rate / tr["hop_length"], offset
    if kind == "log-psd":
        return rate / (tr["nperseg"] - tr["noverlap"]), tr["nperseg"] / 2.0 / rate
    if kind == "kaldi-fbank":
        return 1000.0 / tr["frame_shift_ms"], tr["frame_length_ms"] / 2000.0
    raise ValueError(f"unknown audio transform {kind!r}")


def segment_ranges(audio_preset, time_frames: int, segments: int):
    """The time-frame range `(start, end)` of each one-second segment (`localize::data::segment_ranges`)."""
    clock = _frame_clock(audio_preset)
    if clock is None:
        w = time_frames // max(segments, 1)
        return [(s * w, (s + 1) * w) for s in range(segments)]
    per_second, offset = clock
    width = min(max(int(math.floor(per_second)), 1), time_frames // max(segments, 1))
    out = []
    for s in range(segments):
        first = max(math.ceil((s - offset) * per_second), 0)
        start = min(first, time_frames - width)
        out.append((start, start + width))
    return out


class SegmentDataset(_Base):
    """The localizer's items (AVE): `segments` one-second segments per clip."""

    def __init__(self, root, split="train", *, segments=10, image_size=224, train=None, seed=0, subset="all", val_fraction=0.0):
        super().__init__(root, split, image_size=image_size, train=(split == "train") if train is None else train, seed=seed, subset=subset, val_fraction=val_fraction)
        self.segments = segments
        rows, cols = self.meta.audio_shape
        self.time_first = self.meta.audio_dims[0] == "time"
        t = rows if self.time_first else cols
        self.ranges = segment_ranges(self.meta.preset["audio"], t, segments)

    def __getitem__(self, i):
        row = self.shards.row(i)
        if row.segment_labels is None:
            raise ValueError(f"clip {row.clip_id} has no segment labels (not an AVE shard?)")
        if len(row.segment_labels) != self.segments:
            raise ValueError(f"clip {row.clip_id}: {len(row.segment_labels)} segment labels, expected {self.segments}")
        if not row.frames:
            raise ValueError(f"clip {row.clip_id} has no frames")
        rng = self._rng(row.clip_id)
        flip = self.train and rng.uniform() < 0.5
        spec = row.audio.T if self.time_first else row.audio  # [F, T]
        audio = np.stack([spec[:, a:b] for a, b in self.ranges])[:, None]
        picks = select_frames(len(row.frames), self.segments, False, rng)
        frames = []
        for p in picks:
            img = decode_jpeg(row.frames[p])
            if flip:
                img = img.transpose(0)  # Image.FLIP_LEFT_RIGHT
            frames.append(transform(img, self.image_size, False, rng))
        return {
            "audio": np.ascontiguousarray(audio, dtype=np.float32),
            "frames": np.stack(frames),
            "segment_labels": np.asarray(row.segment_labels, dtype=np.int64),
            "label": row.label,
            "clip_id": row.clip_id,
        }


try:
    import torch
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # torch is optional
    torch = None


def _tensor(v):
    # Arrow's zero-copy buffers are read-only; torch warns on them (and would share them as if
    # writable), so those arrays are copied, the rest shared.
    return torch.from_numpy(v if v.flags.writeable else v.copy())


def _to_torch(item):
    return {k: _tensor(v) if isinstance(v, np.ndarray) else v for k, v in item.items()}


if torch is not None:

    class _TorchItems(_TorchDataset):
        """A NumPy dataset of this module as a `torch.utils.data.Dataset` of tensors."""

        items = None

        def __init__(self, *args, **kwargs):
            self.inner = self.items(*args, **kwargs)

        def set_epoch(self, epoch):
            self.inner.set_epoch(epoch)

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            return _to_torch(self.inner[i])

    class TorchClipDataset(_TorchItems):
        """`ClipDataset` as a `torch.utils.data.Dataset` of tensors (same arguments)."""

        items = ClipDataset

    class TorchSegmentDataset(_TorchItems):
        """`SegmentDataset` as a `torch.utils.data.Dataset` of tensors (same arguments)."""

        items = SegmentDataset

    class EpochSampler(torch.utils.data.Sampler):
        """The trainer's epoch order as a sampler: `set_epoch(e)` also sets the dataset's epoch
        (call it before each epoch, as with `DistributedSampler`)."""

        def __init__(self, dataset, shuffle_buffer: int = 1024):
            self.dataset = getattr(dataset, "inner", dataset)
            self.shuffle_buffer = shuffle_buffer

        def set_epoch(self, epoch):
            self.dataset.set_epoch(epoch)

        def __len__(self):
            return len(self.dataset)

        def __iter__(self):
            return iter(self.dataset.epoch_order(self.shuffle_buffer))
