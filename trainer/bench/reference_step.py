"""The PyTorch reference of one OGM-GE training step, for `bench-trainer` side-by-side timings.

The same step as `trainer` (and the reference's `main.py`, ogm-ge-reference.md section 5.2):
two ResNet18 trunks (audio 1 channel, visual 3 channels with T frames through the 2-D trunk and
one average pool over T x H x W), concat fusion, cross-entropy on the fused logits, uni-modal
logits from each half of the classifier with bias/2, the coefficient rule, conv-weight gradients
of the dominant encoder scaled, GE noise N(0, std(g) + 1e-8) on both encoders' conv weights, SGD
(lr 1e-3, momentum 0.9, weight decay 1e-4). Inputs are random, as in `bench-trainer`.

Prints one line: `torch step: <device> batch B, audio FxT, T frames of Spx, <balance>: first X ms,
median Y ms over N steps (median parts, ms: ...)`, the parts timed as `bench-trainer` times its
step (the device synchronised after each): forward (and loss), backward, modulation (the rule,
its host read of the ratio and the gradient edit), optimiser. `--json FILE` writes every step's
times; `--width 8 --image 64` is the `tiny` preset.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class Trunk(nn.Module):
    """torchvision's ResNet18 without avgpool/fc."""

    def __init__(self, cin, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks, c = [], width
        for i, w in enumerate([width, 2 * width, 4 * width, 8 * width]):
            blocks += [Block(c, w, 1 if i == 0 else 2), Block(w, w, 1)]
            c = w
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1))


class AVClassifier(nn.Module):
    def __init__(self, classes, width=64):
        super().__init__()
        self.audio_net, self.visual_net = Trunk(1, width), Trunk(3, width)
        self.fc_out = nn.Linear(16 * width, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, audio, frames):
        b = audio.shape[0]
        a = self.audio_net(audio).mean(dim=(2, 3))
        v = self.visual_net(frames)
        _, d, h, w = v.shape
        v = v.view(b, -1, d, h, w).permute(0, 2, 1, 3, 4).mean(dim=(2, 3, 4))
        return a, v, self.fc_out(torch.cat([a, v], 1))


def step(model, opt, audio, frames, y, balance, lap, alpha=0.8):
    a, v, out = model(audio, frames)
    loss = F.cross_entropy(out, y)
    lap("forward")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    lap("backward")
    if balance != "none":
        with torch.no_grad():
            ws = model.fc_out.weight.shape[1] // 2
            out_a = a @ model.fc_out.weight[:, :ws].T + model.fc_out.bias / 2
            out_v = v @ model.fc_out.weight[:, ws:].T + model.fc_out.bias / 2
            score_a = F.softmax(out_a, 1).gather(1, y[:, None]).sum()
            score_v = F.softmax(out_v, 1).gather(1, y[:, None]).sum()
            ratio_v = (score_v / score_a).item()
            if ratio_v > 1:
                k_a, k_v = 1.0, 1 - torch.tanh(torch.tensor(alpha * ratio_v)).item()
            else:
                k_a, k_v = 1 - torch.tanh(torch.tensor(alpha / ratio_v)).item(), 1.0
            for net, k in ((model.audio_net, k_a), (model.visual_net, k_v)):
                for p in net.parameters():
                    if p.grad is not None and p.grad.dim() == 4:
                        g = p.grad
                        p.grad = g * k + torch.zeros_like(g).normal_(0, g.std().item() + 1e-8)
    lap("modulation")
    opt.step()
    lap("optimiser")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--audio", default="257x188")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--image", type=int, default=224)
    ap.add_argument("--balance", default="ogm-ge", choices=["none", "ogm-ge"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    f, t = map(int, args.audio.split("x"))
    model = AVClassifier(6, args.width).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    totals, parts = [], {}
    for i in range(args.steps + 1):
        audio = torch.randn(args.batch, 1, f, t, device=dev)
        frames = torch.randn(args.batch * args.frames, 3, args.image, args.image, device=dev)
        y = torch.arange(args.batch, device=dev) % 6
        sync()
        marks = [time.perf_counter()]

        def lap(name):
            sync()
            marks.append(time.perf_counter())
            parts.setdefault(name, []).append((marks[-1] - marks[-2]) * 1000)

        step(model, opt, audio, frames, y, args.balance, lap)
        totals.append((marks[-1] - marks[0]) * 1000)
    steady = ", ".join(f"{k} {statistics.median(v[1:]):.0f}" for k, v in parts.items())
    print(
        f"torch step: {args.device} batch {args.batch}, audio {f}x{t}, {args.frames} frames of {args.image}px, "
        f"{args.balance}: first {totals[0]:.0f} ms, median {statistics.median(totals[1:]):.0f} ms over {args.steps} steps "
        f"(median parts, ms: {steady}; {torch.get_num_threads()} threads, torch {torch.__version__})"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"steps_ms": totals, "first_ms": totals[0], "median_ms": statistics.median(totals[1:]), "parts_ms": parts}, out)


if __name__ == "__main__":
    main()
