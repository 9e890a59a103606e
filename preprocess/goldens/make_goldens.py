"""Golden values for the audio presets, from the Python references themselves.

Run with `cargo xtask goldens` (installs librosa, scipy, soundfile, torch and torchaudio into .venv).
For each case it writes
  <case>.input.f32   the mono waveform the reference fed to its transform (before tiling), float32 LE
  <case>.golden.f32  the reference's output matrix, float32 LE, row-major
and cases.json with shapes, rates and the code path used. The Rust test feeds the same waveform to
our preset and compares; a separate test compares our FFmpeg decode with the reference's loading.

Each block below is the reference code of ogm-ge-reference.md section 2 (with design.md's choice:
`vggsound-stft` keeps the full 10 s; the 5-s crop is the trainer's).
"""
import json
import sys
from pathlib import Path

import librosa
import numpy as np
import scipy
import scipy.signal as signal
import soundfile as sf
import torch
import torchaudio

HERE = Path(__file__).resolve().parent
MEDIA = (HERE / "../../tests/media").resolve()


def save(case, waveform, rate, golden, preset, source, how):
    waveform = np.ascontiguousarray(waveform, dtype="<f4")
    golden = np.ascontiguousarray(golden, dtype="<f4")
    (HERE / f"{case}.input.f32").write_bytes(waveform.tobytes())
    (HERE / f"{case}.golden.f32").write_bytes(golden.tobytes())
    return {"case": case, "preset": preset, "source": source, "rate": int(rate),
            "input_samples": int(waveform.size), "shape": list(golden.shape), "reference": how}


def cremad_stft(path):
    # OGM HEAD dataset/CramedDataset.py
    samples, rate = librosa.load(path, sr=22050)
    resamples = np.tile(samples, 3)[:22050 * 3]
    resamples[resamples > 1.] = 1.
    resamples[resamples < -1.] = -1.
    spectrogram = librosa.stft(resamples, n_fft=512, hop_length=353)
    spectrogram = np.log(np.abs(spectrogram) + 1e-7)
    return samples, rate, spectrogram


def vggsound_stft(path):
    # OGM HEAD dataset/VGGSoundDataset.py, without the random 5-s crop (design.md)
    sample, rate = librosa.load(path, sr=16000, mono=True)
    loaded = sample.copy()
    while len(sample) / rate < 10.:
        sample = np.tile(sample, 2)
    sample = sample[:160000]
    sample[sample > 1.] = 1.
    sample[sample < -1.] = -1.
    spectrogram = librosa.stft(sample, n_fft=256, hop_length=128)
    spectrogram = np.log(np.abs(spectrogram) + 1e-7)
    return loaded, rate, spectrogram


def psd_1004(path):
    # OGM-old datasets/dataloader_av.py / PMR AVE preprocessing (librosa.load at 16 kHz)
    samples, rate = librosa.load(path, sr=16000)
    resamples = np.tile(samples, 10)[:160000]
    resamples[resamples > 1.] = 1.
    resamples[resamples < -1.] = -1.
    frequencies, times, spectrogram = signal.spectrogram(resamples, rate, nperseg=512, noverlap=353)
    spectrogram = np.log(spectrogram + 1e-7)
    mean = np.mean(spectrogram)
    std = np.std(spectrogram)
    spectrogram = np.divide(spectrogram - mean, std + 1e-9)
    return samples, rate, spectrogram


def kaldi_fbank(path):
    # OGM data/KineticSound/process_audio.py. torchaudio >= 2.9 loads through torchcodec; soundfile
    # gives the same float32 samples for PCM WAV (int16 / 32768). Mono input: design.md's mean
    # downmix and the reference's channel 0 coincide.
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    waveform = torch.from_numpy(data.T.copy())
    loaded = waveform[0].numpy().copy()
    waveform = waveform - waveform.mean()
    fbank = torchaudio.compliance.kaldi.fbank(
        waveform, htk_compat=True, sample_frequency=sr, use_energy=False, window_type="hanning",
        num_mel_bins=128, dither=0.0, frame_shift=10)
    target_length = 1024
    n_frames = fbank.shape[0]
    p = target_length - n_frames
    if p > 0:
        fbank = torch.nn.ZeroPad2d((0, 0, 0, p))(fbank)
    elif p < 0:
        fbank = fbank[0:target_length, :]
    fbank = (fbank - (-4.503877)) / (5.141276 * 2)
    return loaded, sr, fbank.numpy()


CASES = [
    ("cremad-stft_noisy", "cremad-stft", cremad_stft, "speech24k_noisy.wav"),
    ("cremad-stft_stereo", "cremad-stft", cremad_stft, "stereo16k.wav"),
    ("vggsound-stft_stereo", "vggsound-stft", vggsound_stft, "stereo16k.wav"),
    ("psd-1004_clean", "psd-1004", psd_1004, "speech24k_clean.wav"),
    ("psd-1004_stereo", "psd-1004", psd_1004, "stereo16k.wav"),
    ("kaldi-fbank_clean", "kaldi-fbank", kaldi_fbank, "speech24k_clean.wav"),
    ("kaldi-fbank_noisy", "kaldi-fbank", kaldi_fbank, "speech24k_noisy.wav"),
]


def main():
    out = []
    for case, preset, fn, source in CASES:
        waveform, rate, golden = fn(str(MEDIA / source))
        out.append(save(case, waveform, rate, golden, preset, source, fn.__name__))
        print(case, golden.shape, file=sys.stderr)
    versions = {"librosa": librosa.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                "torch": torch.__version__, "torchaudio": torchaudio.__version__}
    (HERE / "cases.json").write_text(json.dumps({"versions": versions, "cases": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
