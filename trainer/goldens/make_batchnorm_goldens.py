"""Goldens for batch normalisation, computed with PyTorch's nn.BatchNorm2d (what the OGM-GE
ResNet18 uses) in float64 on float32-rounded inputs: one training step (output, gradients of a
weighted sum with respect to the input, gamma and beta, running statistics after it; PyTorch
updates the running variance with the unbiased estimate) and an evaluation pass on new input.

Run: .venv/bin/python trainer/goldens/make_batchnorm_goldens.py  (needs torch; `cargo xtask
goldens` installs it). Writes batchnorm.json.
"""
import json
from pathlib import Path

import torch
import torch.nn as nn

torch.manual_seed(0)
cases = []
# (batch, channels, height, width): a conv feature map, a single clip, a 1x1 map (a batch of
# vectors, as after global pooling).
for shape in [(4, 3, 5, 6), (1, 4, 7, 7), (6, 5, 1, 1)]:
    b, c, h, w = shape
    f32 = lambda t: t.float().double()
    x = f32(torch.randn(shape, dtype=torch.float64) * 2.0 + torch.arange(c, dtype=torch.float64).view(1, c, 1, 1))
    x.requires_grad_(True)
    weights = f32(torch.randn(shape, dtype=torch.float64))
    gamma = f32(torch.rand(c, dtype=torch.float64) + 0.5)
    beta = f32(torch.randn(c, dtype=torch.float64))
    bn = nn.BatchNorm2d(c, momentum=0.1, eps=1e-5).double()
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    bn.train()
    y = bn(x)
    (y * weights).sum().backward()
    bn.eval()
    x_eval = f32(torch.randn(shape, dtype=torch.float64))
    y_eval = bn(x_eval)
    flat = lambda t: t.detach().flatten().tolist()
    cases.append({
        "shape": list(shape), "x": flat(x), "weights": flat(weights), "gamma": flat(gamma), "beta": flat(beta),
        "y": flat(y), "grad_x": flat(x.grad), "grad_gamma": flat(bn.weight.grad), "grad_beta": flat(bn.bias.grad),
        "running_mean": flat(bn.running_mean), "running_var": flat(bn.running_var),
        "x_eval": flat(x_eval), "y_eval": flat(y_eval),
    })
Path(__file__).with_name("batchnorm.json").write_text(json.dumps({"torch": torch.__version__, "cases": cases}))
