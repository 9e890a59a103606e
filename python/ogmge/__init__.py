"""Read the toolkit's shards as the trainer's loader does, and export them to the layouts the
reference programs read. See the README's "From Python" section."""

from .dataset import ClipDataset, SegmentDataset, segment_ranges
from .rng import Rng, fnv1a
from .shards import ShardSet, read_meta

__all__ = ["ClipDataset", "SegmentDataset", "ShardSet", "Rng", "fnv1a", "read_meta", "segment_ranges"]

try:
    from .dataset import EpochSampler, TorchClipDataset, TorchSegmentDataset  # noqa: F401

    __all__ += ["TorchClipDataset", "TorchSegmentDataset", "EpochSampler"]
except ImportError:
    pass
