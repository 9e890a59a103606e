"""Frame selection and image transforms, as the trainer's (`trainer/src/transform.rs`), which are
the reference loaders' (torchvision semantics): train = a random frame inside each of T equal
segments, RandomResizedCrop(size, scale (0.08, 1), ratio (3/4, 4/3)) + horizontal flip (p 0.5);
eval = the middle frame of each segment, Resize((size, size)). Both end with ImageNet
normalisation, CHW float32. Random draws come from the given `Rng`, in the trainer's order."""

import io
import math

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def select_frames(n: int, t: int, train: bool, rng):
    """Indices of the `t` frames taken from `n` (train: random in each segment; eval: the middle)."""
    picks = []
    for i in range(t):
        start, end = i * n / t, (i + 1) * n / t
        x = start + rng.uniform() * (end - start) if train else (start + end) / 2.0
        picks.append(min(int(math.floor(x)), max(n - 1, 0)))
    return picks


def _round(x: float) -> int:
    # Rust's f64::round: halves away from zero (Python's round() goes to even).
    return int(math.floor(x + 0.5))


def random_resized_crop_params(w: int, h: int, rng):
    """torchvision `RandomResizedCrop.get_params`: (top, left, height, width)."""
    area = float(w) * float(h)
    lo, hi = math.log(3.0 / 4.0), math.log(4.0 / 3.0)
    for _ in range(10):
        target = area * (0.08 + rng.uniform() * (1.0 - 0.08))
        aspect = math.exp(lo + rng.uniform() * (hi - lo))
        cw = _round(math.sqrt(target * aspect))
        ch = _round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = rng.below(h - ch + 1)
            left = rng.below(w - cw + 1)
            return top, left, ch, cw
    ratio = w / h
    if ratio < 3.0 / 4.0:
        cw, ch = w, _round(w / (3.0 / 4.0))
    elif ratio > 4.0 / 3.0:
        cw, ch = _round(h * 4.0 / 3.0), h
    else:
        cw, ch = w, h
    cw, ch = min(cw, w), min(ch, h)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def decode_jpeg(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def normalise(img: Image.Image) -> np.ndarray:
    """HWC uint8 -> CHW float32, ImageNet mean/std (the same float32 arithmetic as the trainer)."""
    a = np.asarray(img, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    return ((a - MEAN) / STD).transpose(2, 0, 1).copy()


def transform(img: Image.Image, size: int, train: bool, rng) -> np.ndarray:
    """One decoded frame to a `3 x size x size` array (train: crop, resize, flip; eval: resize)."""
    if train:
        top, left, ch, cw = random_resized_crop_params(img.width, img.height, rng)
        out = img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BILINEAR)
        if rng.uniform() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
    else:
        out = img.resize((size, size), Image.BILINEAR)
    return normalise(out)
