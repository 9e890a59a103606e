"""Goldens for the optimisers on their own: three steps of torch.optim.SGD (momentum 0.9, weight
decay 1e-4), torch.optim.Adam and torch.optim.AdamW (PyTorch's defaults: betas 0.9/0.999, eps
1e-8; weight decay 1e-4 and 1e-2) on a linear classifier (6 -> 3, cross-entropy on a fixed batch
of 5), in float64 so the golden is each rule itself. The initial weights and the batch are
float32 values (what the Rust side holds) written into the golden.

Run: .venv/bin/python trainer/goldens/make_optimizer_goldens.py  (`cargo xtask goldens` runs it).
Writes optimizers.json.
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(0)
W0 = (torch.randn(3, 6) * 0.5).float().double()
B0 = (torch.randn(3) * 0.1).float().double()
X = torch.randn(5, 6).float().double()
Y = torch.tensor([0, 2, 1, 1, 0])
LR = 0.05
CASES = {
    "sgd": lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9, weight_decay=1e-4),
    "adam": lambda p: torch.optim.Adam(p, lr=LR, weight_decay=1e-4),
    "adamw": lambda p: torch.optim.AdamW(p, lr=LR, weight_decay=1e-2),
}

out = {"torch": torch.__version__, "lr": LR, "w0": W0.flatten().tolist(), "b0": B0.tolist(), "x": X.flatten().tolist(), "y": Y.tolist(), "cases": {}}
for name, make in CASES.items():
    w, b = W0.clone().requires_grad_(), B0.clone().requires_grad_()
    opt = make([w, b])
    steps = []
    for _ in range(3):
        loss = F.cross_entropy(X @ w.T + b, Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps.append({"loss": loss.item(), "w": w.detach().flatten().tolist(), "b": b.detach().tolist()})
    out["cases"][name] = {"weight_decay": opt.param_groups[0]["weight_decay"], "steps": steps}
Path(__file__).with_name("optimizers.json").write_text(json.dumps(out, indent=1))
