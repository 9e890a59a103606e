"""Goldens for the architectures of issue 18, from transcriptions of the authors' public code:

- PSP: `PSP.forward`, `Classify`-style `L2(relu(L1(fusion)))`, `AVSimilarity` and `AVPSLoss` of
  jasongief/PSP_CVPR_2021 @ 40b0fa7 (`fully_model.py` L93-160 and L223-236, `measure.py`
  L32-43), the AVPS targets of `dataloader.py::get_segment_wise_relation` (on a cleared buffer),
  in eval mode (no dropout), on fixed inputs and weights, at three pruning thresholds; with the
  gradients of `sum(out * w) + 100 * AVPS` with respect to both streams.
- TSM: `TemporalShift.shift` of mit-han-lab/temporal-shift-module (`ops/temporal_shift.py`
  L27-41, the out-of-place path), n_div 8, with the gradient of `sum(y * w)`.

Run: .venv/bin/python trainer/goldens/make_architecture_goldens.py (needs torch; `cargo xtask
goldens`). Writes architectures.json.
"""
import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(18)


def tolist(t):
    return t.detach().double().flatten().tolist()


# ---------------------------------------------------------------- PSP (transcribed)
class PSP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.v_L1 = nn.Linear(dim, dim, bias=False)
        self.v_L2 = nn.Linear(dim, dim, bias=False)
        self.v_fc = nn.Linear(dim, dim, bias=False)
        self.a_L1 = nn.Linear(dim, dim, bias=False)
        self.a_L2 = nn.Linear(dim, dim, bias=False)
        self.a_fc = nn.Linear(dim, dim, bias=False)
        self.activation = nn.ReLU()
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=0.1)
        self.layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, a_fea, v_fea, thr_val):
        v_branch1 = self.dropout(self.activation(self.v_L1(v_fea)))
        v_branch2 = self.dropout(self.activation(self.v_L2(v_fea)))
        a_branch1 = self.dropout(self.activation(self.a_L1(a_fea)))
        a_branch2 = self.dropout(self.activation(self.a_L2(a_fea)))

        cross_att_v_to_a = torch.bmm(v_branch2, a_branch1.permute(0, 2, 1))
        cross_att_v_to_a = cross_att_v_to_a / torch.sqrt(torch.FloatTensor([v_branch2.shape[2]]))
        cross_att_v_to_a = F.relu(cross_att_v_to_a)
        cross_att_a_to_v = cross_att_v_to_a.permute(0, 2, 1)

        sum_v_to_a = torch.sum(cross_att_v_to_a, dim=-1, keepdim=True)
        cross_att_v_to_a = cross_att_v_to_a / (sum_v_to_a + 1e-8)
        cross_att_v_to_a = (cross_att_v_to_a > thr_val).float() * cross_att_v_to_a
        sum_v_to_a = torch.sum(cross_att_v_to_a, dim=-1, keepdim=True)
        cross_att_v_to_a = cross_att_v_to_a / (sum_v_to_a + 1e-8)

        sum_a_to_v = torch.sum(cross_att_a_to_v, dim=-1, keepdim=True)
        cross_att_a_to_v = cross_att_a_to_v / (sum_a_to_v + 1e-8)
        cross_att_a_to_v = (cross_att_a_to_v > thr_val).float() * cross_att_a_to_v
        sum_a_to_v = torch.sum(cross_att_a_to_v, dim=-1, keepdim=True)
        cross_att_a_to_v = cross_att_a_to_v / (sum_a_to_v + 1e-8)

        a_pos = torch.bmm(cross_att_v_to_a, a_branch2)
        v_psp = v_fea + a_pos
        v_pos = torch.bmm(cross_att_a_to_v, v_branch1)
        a_psp = a_fea + v_pos

        v_psp = self.dropout(self.relu(self.v_fc(v_psp)))
        a_psp = self.dropout(self.relu(self.a_fc(a_psp)))
        v_psp = self.layer_norm(v_psp)
        a_psp = self.layer_norm(a_psp)

        a_v_fuse = torch.mul(v_psp + a_psp, 0.5)
        return a_v_fuse, v_psp, a_psp


def av_similarity(v_fea, a_fea):
    v_fea = F.normalize(v_fea, dim=-1)
    a_fea = F.normalize(a_fea, dim=-1)
    return torch.sum(torch.mul(v_fea, a_fea), dim=-1)


def avps_loss(av_simm, soft_label):
    relu_av_simm = F.relu(av_simm)
    sum_av_simm = torch.sum(relu_av_simm, dim=-1, keepdim=True)
    avg_av_simm = relu_av_simm / (sum_av_simm + 1e-8)
    return nn.MSELoss()(avg_av_simm, soft_label)


def segment_wise_relation(labels_onehot):
    """`get_segment_wise_relation` on a cleared buffer."""
    bs, seg_num, _ = labels_onehot.shape
    gt = torch.zeros(bs, seg_num)
    for i in range(bs):
        col_sum = labels_onehot[i].T.sum(axis=1)
        cols = sorted(col_sum.nonzero()[:, 0].tolist())
        category_col = labels_onehot[i, :, cols[0]]
        rows = category_col.nonzero()[:, 0].tolist()
        if rows:
            gt[i, rows] = 1 / len(rows)
    return gt


DIM, HIDDEN, CLASSES, SEG = 16, 64, 29, 10
psp = PSP(DIM)
for layer in [psp.v_L1, psp.v_L2, psp.a_L1, psp.a_L2, psp.a_fc, psp.v_fc]:
    nn.init.xavier_uniform_(layer.weight)
with torch.no_grad():
    psp.layer_norm.weight.copy_(1 + 0.1 * torch.randn(DIM))
    psp.layer_norm.bias.copy_(0.1 * torch.randn(DIM))
L1 = nn.Linear(DIM, HIDDEN, bias=False)
L2 = nn.Linear(HIDDEN, CLASSES, bias=False)
nn.init.xavier_uniform_(L1.weight)
nn.init.xavier_uniform_(L2.weight)
psp.eval()

# Two clips: one with an event over seconds 3..6 (class 5), one all background (class 28).
labels = torch.full((2, SEG), 28, dtype=torch.long)
labels[0, 3:7] = 5
onehot = F.one_hot(labels, CLASSES).float()
soft = segment_wise_relation(onehot)
a_in = torch.randn(2, SEG, DIM)
v_in = torch.randn(2, SEG, DIM)
w_out = torch.randn(2, SEG, CLASSES)

cases = []
for thr in [0.0, 0.099, 0.15]:
    a = a_in.clone().requires_grad_()
    v = v_in.clone().requires_grad_()
    fused, v_psp, a_psp = psp(a, v, thr)
    out = L2(F.relu(L1(fused)))
    sim = av_similarity(v_psp, a_psp)
    loss_avps = avps_loss(sim, soft)
    total = (out * w_out).sum() + 100 * loss_avps
    ga, gv = torch.autograd.grad(total, [a, v])
    cases.append({
        "threshold": thr,
        "fused": tolist(fused),
        "visual": tolist(v_psp),
        "audio": tolist(a_psp),
        "logits": tolist(out),
        "similarity": tolist(sim),
        "avps_loss": loss_avps.item(),
        "grad_audio": tolist(ga),
        "grad_visual": tolist(gv),
    })

weights = {name: tolist(getattr(psp, name).weight) for name in ["v_L1", "v_L2", "v_fc", "a_L1", "a_L2", "a_fc"]}
psp_golden = {
    "source": "jasongief/PSP_CVPR_2021@40b0fa7 fully_model.py PSP, AVSimilarity; measure.py AVPSLoss; dataloader.py get_segment_wise_relation",
    "dim": DIM,
    "hidden": HIDDEN,
    "classes": CLASSES,
    "segments": SEG,
    "clips": 2,
    "weights_out_in": weights,
    "layer_norm_weight": tolist(psp.layer_norm.weight),
    "layer_norm_bias": tolist(psp.layer_norm.bias),
    "l1_out_in": tolist(L1.weight),
    "l2_out_in": tolist(L2.weight),
    "labels": labels.flatten().tolist(),
    "avps_targets": tolist(soft),
    "audio_in": tolist(a_in),
    "visual_in": tolist(v_in),
    "out_weights": tolist(w_out),
    "cases": cases,
}


# ---------------------------------------------------------------- TSM (transcribed)
def shift(x, n_segment, fold_div=3):
    nt, c, h, w = x.size()
    n_batch = nt // n_segment
    x = x.view(n_batch, n_segment, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
    out[:, 1:, fold: 2 * fold] = x[:, :-1, fold: 2 * fold]  # shift right
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]  # not shift
    return out.view(nt, c, h, w)


tsm_cases = []
for n_batch, n_segment, c in [(2, 4, 16), (1, 3, 12), (3, 1, 8)]:
    x = torch.randn(n_batch * n_segment, c, 3, 2, requires_grad=True)
    y = shift(x, n_segment, fold_div=8)
    w = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * w).sum(), [x])
    tsm_cases.append({"segments": n_segment, "shape": list(x.shape), "x": tolist(x), "y": tolist(y), "w": tolist(w), "grad": tolist(g)})

out = {"psp": psp_golden, "tsm": {"source": "mit-han-lab/temporal-shift-module ops/temporal_shift.py TemporalShift.shift", "n_div": 8, "cases": tsm_cases}}
path = Path(__file__).with_name("architectures.json")
path.write_text(json.dumps(out))
print(f"wrote {path}")
