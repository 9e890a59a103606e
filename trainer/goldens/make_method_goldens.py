"""Goldens for the balancing methods' rules, from Python transcriptions of their references.

- Gradient-Blending: the weight rule of BalanceBenchmark's `GBlending_trainer.super_epoch_origin`
  (commit 4c1482f; methods.md section 2), transcribed line by line below, fed with per-sample mean
  losses (our fix of BB's sums; its own earlier, commented-out version divides by the number of
  batches too). Inputs: losses recorded by real estimate runs of `trainer compare --methods
  gblend-online` on the synthetic corpus (`recorded` below, copied from a run's method.jsonl),
  and drawn ones, including a validation loss that rises (g > 0, which `abs` turns positive).
- Modality-Drop: what PyTorch's `nn.Dropout(p)` in training mode makes of a one-element tensor of
  ones (the OGM-GE authors' `x *= self.dropy(torch.ones(1))`): the values it takes and how often it
  is 0, over many draws.
- Adaptive alpha: the OGM rule of main.py (`1 - tanh(alpha * relu(ratio))`) evaluated at the alpha
  our rule chooses, `atanh(1 - 1/rho) / rho`, which must give `1 / rho`.

Run: .venv/bin/python trainer/goldens/make_method_goldens.py (needs torch; `cargo xtask goldens`).
Writes methods.json.
"""
import json
import math
from pathlib import Path

import torch
import torch.nn as nn

torch.manual_seed(0)


def bb_gblend_weights(runs):
    """BB's rule. `runs[modality] = (pre_train, pre_val, now_train, now_val)`; modalities audio,
    visual, output."""
    weights = {}
    for modality, (pre_train_loss, pre_validation_loss, now_train_loss, now_validation_loss) in runs.items():
        # --- GBlending_trainer.py, super_epoch_origin, after the loop over super-epochs ---
        g = now_validation_loss - pre_validation_loss
        o_pre = pre_validation_loss - pre_train_loss
        o_now = now_validation_loss - now_train_loss
        o = o_now - o_pre
        weights[modality] = abs(g) / (o ** 2)
    sums = sum(weights.values())
    for modality in weights.keys():
        weights[modality] /= sums
    # ---
    return weights


# Recorded by `trainer compare --methods gblend-online --seeds 0 --epochs 4 --super-epoch 2` on
# the default synthetic corpus (method.jsonl, the estimates at epochs 0 and 2): per head,
# (train after the first epoch, val after it, train after the last, val after it).
recorded = [
 {
  "audio": [
   1.6974504582489593,
   15.627134799957275,
   1.1091826248772536,
   23.239200375296853
  ],
  "visual": [
   1.9924404696573186,
   2.7710846987637607,
   1.8613531363161304,
   6.276612151752818
  ],
  "output": [
   1.8323983874502061,
   12.725923104719682,
   1.2498017217539534,
   51.56236111034047
  ]
 },
 {
  "audio": [
   1.1373477223553234,
   0.6612565436146476,
   0.9404733075371271,
   0.9435326673767783
  ],
  "visual": [
   1.5555952847758425,
   2.408389698375355,
   1.518352158461945,
   2.5492307489568535
  ],
  "output": [
   1.0064130930960933,
   0.5599473416805267,
   0.8039675860465327,
   0.7651986859061501
  ]
 }
]

cases = []
for r in recorded:
    cases.append({"source": "recorded", "losses": r, "weights": bb_gblend_weights({k: tuple(v) for k, v in r.items()})})
for i in range(20):
    r = {}
    for head in ["audio", "visual", "output"]:
        pre_train = 0.5 + 2.0 * torch.rand(1).item()
        pre_val = pre_train + 0.5 * torch.rand(1).item()
        now_train = pre_train * (0.2 + 0.8 * torch.rand(1).item())
        # Mostly a falling validation loss; every fifth case a rising one.
        now_val = pre_val * ((1.05 + 0.3 * torch.rand(1).item()) if i % 5 == 4 else (0.5 + 0.5 * torch.rand(1).item()))
        r[head] = [pre_train, pre_val, now_train, now_val]
    cases.append({"source": "drawn", "losses": r, "weights": bb_gblend_weights({k: tuple(v) for k, v in r.items()})})

drops = []
for p in [0.1, 0.5, 0.9]:
    d = nn.Dropout(p)
    d.train()
    values = torch.stack([d(torch.ones(1)) for _ in range(20000)]).flatten()
    distinct = sorted(set(values.tolist()))
    drops.append({"p": p, "values": distinct, "zero_fraction": float((values == 0).float().mean()), "draws": len(values)})

adaptive = []
relu, tanh = nn.ReLU(), nn.Tanh()
for rho in [1.0, 1.0001, 1.1, 1.5, 2.0, 3.0, 4.0, 10.0, 100.0]:
    alpha = math.atanh(1 - 1 / rho) / rho
    k = 1 - tanh(alpha * relu(torch.tensor(rho, dtype=torch.float64)))  # main.py's coefficient
    adaptive.append({"rho": rho, "alpha": alpha, "k": float(k)})

out = {"torch": torch.__version__, "gblend": cases, "dropout": drops, "adaptive": adaptive}
Path(__file__).with_name("methods.json").write_text(json.dumps(out, indent=1))
