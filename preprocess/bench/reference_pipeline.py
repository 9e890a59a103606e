"""The reference preprocessing pipeline, as the original OGM-GE scripts do it, one clip after the
other: ffmpeg CLI to WAV (`mp4_to_wav.py`) and to 1-fps JPEG frames (`video_preprocessing.py`
style), librosa load at 22050 Hz + STFT 512/353 + log (CramedDataset), PIL resize of each frame
to short side 256 + JPEG.

Usage: reference_pipeline.py <list of video paths, one per line> <work dir>

Steady state, as over a real dataset: the first clip of the list is processed once untimed first
(Python's start, librosa's lazy imports of scipy/numba/soxr and numba's compiling or cache loading
cost 1.5 s here, 10 s on a first run ever: what a dataset of thousands of clips amortises), then
every clip of the list is timed. Prints one JSON line: {"clips": n, "ok": m, "wall_s": ...,
"cpu_s": ..., "system_s": ...}, times of the timed part, CPU including the ffmpeg children.
"""
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import librosa
import numpy as np
from PIL import Image


def process(i, src, work):
    wav = work / f"{i}.wav"
    frames = work / f"{i}_frames"
    frames.mkdir(exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-acodec", "pcm_s16le", "-ar", "16000", str(wav)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-vf", "fps=1", "-q:v", "2", str(frames / "%05d.jpg")], check=True)
    samples, rate = librosa.load(str(wav), sr=22050)
    resamples = np.tile(samples, 3)[:22050 * 3]
    resamples[resamples > 1.] = 1.
    resamples[resamples < -1.] = -1.
    spec = np.log(np.abs(librosa.stft(resamples, n_fft=512, hop_length=353)) + 1e-7)
    np.save(work / f"{i}.npy", spec)
    for f in sorted(frames.glob("*.jpg"))[:10]:
        img = Image.open(f).convert("RGB")
        w, h = img.size
        s = 256 / min(w, h)
        img.resize((round(w * s), round(h * s)), Image.BILINEAR).save(f.with_suffix(".small.jpg"), quality=90)


def cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, me.ru_stime + kids.ru_stime


paths = [l.strip() for l in Path(sys.argv[1]).read_text().splitlines() if l.strip()]
work = Path(sys.argv[2])
work.mkdir(parents=True, exist_ok=True)
warm = work / "warmup"
warm.mkdir(exist_ok=True)
process(0, paths[0], warm)

t0, (c0, s0) = time.perf_counter(), cpu()
ok = 0
for i, src in enumerate(paths):
    process(i, src, work)
    ok += 1
wall, (c1, s1) = time.perf_counter() - t0, cpu()
print(json.dumps({"clips": len(paths), "ok": ok, "wall_s": wall, "cpu_s": c1 - c0, "system_s": s1 - s0}))
