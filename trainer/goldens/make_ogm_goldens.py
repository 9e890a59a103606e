"""Goldens for the OGM-GE coefficient rule, computed with the reference code of OGM-GE main.py
(ogm-ge-reference.md section 5.2), in float64 so the golden is the formula itself.

Run: .venv/bin/python trainer/goldens/make_ogm_goldens.py  (needs torch; `cargo xtask goldens`
installs it). Writes ogm_coefficients.json.
"""
import json
from pathlib import Path

import torch
import torch.nn as nn

torch.manual_seed(0)
softmax = nn.Softmax(dim=1)
relu = nn.ReLU(inplace=True)
tanh = nn.Tanh()
cases = []
for case in range(40):
    batch = [1, 4, 16, 64][case % 4]
    classes = [2, 6, 31][case % 3]
    alpha = [0.1, 0.3, 0.8, 1.5, 2.6][case % 5]
    scale_a, scale_v = (3.0, 0.5) if case % 2 else (0.5, 3.0)
    out_a = torch.randn(batch, classes, dtype=torch.float64) * scale_a
    out_v = torch.randn(batch, classes, dtype=torch.float64) * scale_v
    if case == 39:  # the tie: identical logits, ratio exactly 1 -> audio damped
        out_v = out_a.clone()
    label = torch.randint(0, classes, (batch,))
    # The test feeds float32 logits: round them first, then run the reference in float64.
    out_a, out_v = out_a.float().double(), out_v.float().double()
    # --- reference (main.py train_epoch) ---
    score_v = sum([softmax(out_v)[i][label[i]] for i in range(out_v.size(0))])
    score_a = sum([softmax(out_a)[i][label[i]] for i in range(out_a.size(0))])
    ratio_v = score_v / score_a
    ratio_a = 1 / ratio_v
    if ratio_v > 1:
        coeff_v = 1 - tanh(alpha * relu(ratio_v))
        coeff_a = 1
    else:
        coeff_a = 1 - tanh(alpha * relu(ratio_a))
        coeff_v = 1
    # ---
    cases.append({
        "alpha": alpha, "classes": classes, "labels": label.tolist(),
        "audio_logits": out_a.flatten().tolist(), "visual_logits": out_v.flatten().tolist(),
    })
    cases[-1].update({"ratio_a": float(ratio_a), "k_a": float(coeff_a), "k_v": float(coeff_v)})
Path(__file__).with_name("ogm_coefficients.json").write_text(json.dumps({"torch": torch.__version__, "cases": cases}))
