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

`--workers N` (N > 1): the same work over a pool of N processes, as one would run it on N cores;
each worker processes the first clip untimed, all wait for each other, then the clips are timed
(wall from the start of the pool's work to its end, CPU as the sum of each clip's own).
"""
import json
import multiprocessing as mp
import os
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


def warm_up(barrier, first, work):
    warm = work / f"warmup-{os.getpid()}"
    warm.mkdir(exist_ok=True)
    process(0, first, warm)
    barrier.wait()


def timed(job):
    i, src, work = job
    c0, s0 = cpu()
    process(i, src, work)
    c1, s1 = cpu()
    return c1 - c0, s1 - s0


def main():
    args = sys.argv[1:]
    workers = 1
    if "--workers" in args:
        k = args.index("--workers")
        workers = int(args[k + 1])
        del args[k : k + 2]
    paths = [l.strip() for l in Path(args[0]).read_text().splitlines() if l.strip()]
    work = Path(args[1])
    work.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        barrier = mp.Barrier(workers + 1)
        with mp.Pool(workers, initializer=warm_up, initargs=(barrier, paths[0], work)) as pool:
            barrier.wait()
            t0 = time.perf_counter()
            per_clip = pool.map(timed, [(i, src, work) for i, src in enumerate(paths)], chunksize=1)
            wall = time.perf_counter() - t0
        cpu_s, system_s = sum(c for c, _ in per_clip), sum(s for _, s in per_clip)
        print(json.dumps({"clips": len(paths), "ok": len(per_clip), "workers": workers, "wall_s": wall, "cpu_s": cpu_s, "system_s": system_s}))
        return
    warm = work / "warmup"
    warm.mkdir(exist_ok=True)
    process(0, paths[0], warm)
    t0, (c0, s0) = time.perf_counter(), cpu()
    ok = 0
    for i, src in enumerate(paths):
        process(i, src, work)
        ok += 1
    wall, (c1, s1) = time.perf_counter() - t0, cpu()
    print(json.dumps({"clips": len(paths), "ok": ok, "workers": 1, "wall_s": wall, "cpu_s": c1 - c0, "system_s": s1 - s0}))


if __name__ == "__main__":
    main()
