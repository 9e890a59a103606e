"""The reference preprocessing pipeline, as the original OGM-GE scripts do it, one clip after the
other: ffmpeg CLI to WAV (`mp4_to_wav.py`) and to 1-fps JPEG frames (`video_preprocessing.py`
style), librosa load at 22050 Hz + STFT 512/353 + log (CramedDataset), PIL resize of each frame
to short side 256 + JPEG.

Usage: reference_pipeline.py <list of video paths, one per line> <work dir>
Prints one JSON line: {"clips": n, "ok": m}.
"""
import json
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
from PIL import Image

paths = [l.strip() for l in Path(sys.argv[1]).read_text().splitlines() if l.strip()]
work = Path(sys.argv[2])
work.mkdir(parents=True, exist_ok=True)
ok = 0
for i, src in enumerate(paths):
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
    ok += 1
print(json.dumps({"clips": len(paths), "ok": ok}))
