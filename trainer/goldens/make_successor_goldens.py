"""Goldens for the successor methods' core rules (issue 16), from Python transcriptions of the
authors' public code (methods.md sections 3-8 give file and line of each):

- OPM: `calcu_q` and `Modality_drop`'s theta (GeWu-Lab/BML_TPAMI2024, code/models/Classifier.py
  L39-72) on a grid of score pairs.
- MMPareto: the per-encoder combination of code/MMPareto.py L149-207 with the solver of
  code/min_norm_solvers.py (`_min_norm_element_from2`, `find_min_norm_element` for two vectors),
  on drawn gradient pairs with and without conflict; and BalanceBenchmark's accumulated version.
- AGM: the coefficient update of run/CREMAD_main.py L130-166 on a recorded sequence of scores,
  the score of L48 (-log softmax with the 1e-8 floor), and the backward-hook mechanism of
  model/CREMAD_net.py (hooks scaling dL/dm_a, dL/dm_v) on a concat head with features zeroed:
  the gradients it gives the features and the head.
- AGM as BalanceBenchmark runs it: `newGrad.forward` and `training_step` of
  balancemm/trainer/AGM_trainer.py (commit 4c1482f, L222-266 and L535-589) on a toy model named as
  BB's (`modality_encoder.<m>`, `fusion_module.fc_out`) over a few steps: responses, scores,
  coefficients, running means and the gradients after the rank filter and the clip at 5.
- PMR: `calculate_prototype` (main_Prototype_grad.py L383-441, momentum update) and the step's
  loss (L120-186: EU_dist, prototype softmax scores, the weaker modality's prototype CE), with its
  gradients on the features.
- MLA: the GSPlugin projector over a sequence of steps in three forms: the paper's (scalar
  denominator `alpha + r k`), utils/utils.py L12-41 of the authors' commit 4735bbc literally
  (`torch.mm(k, r)`, a d x d matrix, divided element-wise) and BalanceBenchmark's MLA_trainer.py
  L20-53 literally (the same, and the projection added to the gradient); and BalanceBenchmark's per-sample entropy fusion (avclassify_model.py
  L673-700).
- UMT: BalanceBenchmark's student loss (UMT_trainer.py L129-146) on fixed features.

Run: .venv/bin/python trainer/goldens/make_successor_goldens.py (needs torch; `cargo xtask goldens`).
Writes successors.json.
"""
import copy
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(16)
rng = np.random.default_rng(16)


def tolist(t):
    return t.detach().double().flatten().tolist()


# ---------------------------------------------------------------- OPM
def calcu_q(s_a, s_v, q_base=0.5, lam=0.5):
    # Classifier.py calcu_q: ratio -> tanh(relu(ratio - 1)); q = q_base * (1 + lam * rho) where rho > 0
    ratio_a = s_a / s_v
    ratio_v = s_v / s_a
    rho_a = math.tanh(max(ratio_a - 1, 0.0))
    rho_v = math.tanh(max(ratio_v - 1, 0.0))
    q_a = q_base * (1 + lam * rho_a) if rho_a > 0 else 0.0
    q_v = q_base * (1 + lam * rho_v) if rho_v > 0 else 0.0
    q_a = min(max(q_a, 0.0), 1.0)
    q_v = min(max(q_v, 0.0), 1.0)
    return q_a, q_v


def opm_cases():
    cases = []
    for s_a, s_v in [(10.0, 5.0), (5.0, 10.0), (7.0, 7.0), (31.9, 0.4), (0.2, 30.0), (12.0, 11.0), (3.3, 9.9)]:
        for d_a, d_v in [(512, 512), (64, 64), (64, 128)]:
            q_a, q_v = calcu_q(s_a, s_v)
            theta = (d_a * q_a + d_v * q_v) / (d_a + d_v)  # Modality_drop L39-41
            cases.append({"s_a": s_a, "s_v": s_v, "d_a": d_a, "d_v": d_v, "q_a": q_a, "q_v": q_v, "theta": theta})
    return cases


# ---------------------------------------------------------------- MMPareto
def min_norm_element_from2(v1v1, v1v2, v2v2):
    if v1v2 >= v1v1:
        return 0.999, v1v1
    if v1v2 >= v2v2:
        return 0.001, v2v2
    gamma = -1.0 * ((v1v2 - v2v2) / (v1v1 + v2v2 - 2 * v1v2))
    cost = v2v2 + gamma * (v1v2 - v2v2)
    return gamma, cost


def find_min_norm_element(vecs):
    # two vectors: _min_norm_2d over the one pair, sol_vec = [c, 1 - c]
    dps = {}
    for i in range(len(vecs)):
        for j in range(i, len(vecs)):
            dps[(i, j)] = sum(torch.dot(a.flatten(), b.flatten()).item() for a, b in zip(vecs[i], vecs[j]))
    c, cost = min_norm_element_from2(dps[(0, 0)], dps[(0, 1)], dps[(1, 1)])
    return [c, 1 - c], cost


def mmpareto_official(both, uni, gamma):
    """both, uni: lists (one per tensor of one encoder) of gradients. Returns the new gradients."""
    flat_both = torch.cat([g.flatten() for g in both])
    flat_uni = torch.cat([g.flatten() for g in uni])
    cos = F.cosine_similarity(flat_both.double(), flat_uni.double(), dim=0)
    if cos > 0:
        w = [0.5, 0.5]
    else:
        w, _ = find_min_norm_element([[flat_both.double()], [flat_uni.double()]])
    out = []
    for gb, gu in zip(both, uni):
        g3 = gb + gu  # the grad after (L_mm + L_a + L_v).backward()
        g_new = 2 * (w[0] * gb + w[1] * gu)
        r = g3.norm() / g_new.norm()
        out.append(gamma * r * g_new if r > 1 else gamma * g_new)
    return out, float(cos), w


def mmpareto_cases():
    cases = []
    shapes = [[4, 3], [5], [2, 3, 2, 2]]
    for conflict in [False, True, False, True]:
        enc = {}
        for name in ["audio", "visual"]:
            both = [torch.randn(s) for s in shapes]
            uni = [torch.randn(s) * 0.5 for s in shapes]
            sign = -1.0 if conflict else 1.0
            # Push the uni-modal gradient along +-g_both so the encoder's cosine has that sign.
            uni = [u + sign * 1.5 * b for u, b in zip(uni, both)]
            enc[name] = (both, uni)
        head_both = [torch.randn([6, 3]), torch.randn([3])]
        head_uni = [torch.randn([6, 3]), torch.randn([3])]
        case = {"conflict": conflict, "shapes": shapes, "head_shapes": [[6, 3], [3]], "gamma": 1.5}
        for name, (both, uni) in enc.items():
            new, cos, w = mmpareto_official(both, uni, 1.5)
            bb = [2 * 1.5 * (b + u) for b, u in zip(both, uni)]
            case[name] = {"both": [tolist(g) for g in both], "uni": [tolist(g) for g in uni], "official": [tolist(g) for g in new],
                          "bb": [tolist(g) for g in bb], "cos": cos, "weights": list(w)}
        case["head"] = {"both": [tolist(g) for g in head_both], "uni": [tolist(g) for g in head_uni],
                        "sum": [tolist(a + b) for a, b in zip(head_both, head_uni)]}
        cases.append(case)
    return cases


# ---------------------------------------------------------------- AGM
def agm_score(m, y):
    # CREMAD_main.py L48 / L130-140: -log softmax, each term floored at -log 1e-8
    p = F.softmax(m.double(), dim=1)
    out = []
    for i in range(m.shape[0]):
        pi = p[i, y[i]].item()
        out.append(-math.log(1e-8) if pi < 1e-8 or math.isinf(math.log(max(pi, 1e-300))) else -math.log(pi))
    return sum(out) / len(out)


def agm_sequence(scores, alpha):
    t_a = t_v = 0.0
    out = []
    for it, (s_a, s_v) in enumerate(scores, start=1):
        r_a = math.exp(s_v - s_a)
        r_v = math.exp(s_a - s_v)
        tau_a = math.exp(t_v - t_a)
        tau_v = math.exp(t_a - t_v)
        k_a = math.exp(alpha * min(tau_a - r_a, 10))
        k_v = math.exp(alpha * min(tau_v - r_v, 10))
        t_a = t_a * (it - 1) / it + s_a / it
        t_v = t_v * (it - 1) / it + s_v / it
        out.append({"k_a": k_a, "k_v": k_v, "t_a": t_a, "t_v": t_v})
    return out


def agm_bb_sequence(scores, alpha):
    # AGM_trainer.py L553-580: r_m = exp(s_m - s_other), tau_m = exp(t_m - t_other), clamp 7
    t_a = t_v = 0.0
    out = []
    for it, (s_a, s_v) in enumerate(scores, start=1):
        k_a = math.exp(alpha * min(math.exp(t_a - t_v) - math.exp(s_a - s_v), 7))
        k_v = math.exp(alpha * min(math.exp(t_v - t_a) - math.exp(s_v - s_a), 7))
        t_a = t_a * (it - 1) / it + s_a / it
        t_v = t_v * (it - 1) / it + s_v / it
        out.append({"k_a": k_a, "k_v": k_v})
    return out


def agm_hooks(B=5, d=4, C=3, k_a=0.6, k_v=1.7):
    a = torch.randn(B, d, requires_grad=True)
    v = torch.randn(B, d, requires_grad=True)
    W = torch.randn(C, 2 * d, requires_grad=True)
    b = torch.randn(C, requires_grad=True)
    y = torch.tensor(rng.integers(0, C, B))

    def fc(x_a, x_v):
        return torch.cat([x_a, x_v], 1) @ W.t() + b

    total = fc(a, v)
    pad_audio = fc(torch.zeros_like(a), v)
    pad_visual = fc(a, torch.zeros_like(v))
    m_a = 0.5 * (total - pad_audio + pad_visual)
    m_v = 0.5 * (total - pad_visual + pad_audio)
    m_a.register_hook(lambda g: g * k_a)
    m_v.register_hook(lambda g: g * k_v)
    loss = F.cross_entropy(m_a + m_v, y)
    loss.backward()
    return {"B": B, "d": d, "C": C, "k_a": k_a, "k_v": k_v, "a": tolist(a), "v": tolist(v), "W": tolist(W), "b": tolist(b),
            "labels": y.tolist(), "loss": loss.item(), "m_a": tolist(m_a), "m_v": tolist(m_v),
            "score_a": agm_score(m_a.detach(), y), "score_v": agm_score(m_v.detach(), y),
            "grad_a": tolist(a.grad), "grad_v": tolist(v.grad), "grad_W": tolist(W.grad), "grad_b": tolist(b.grad)}


# ---------------------------------------------------------------- AGM as BalanceBenchmark runs it
def generate_all_combinations(input_list, include_empty=True):
    # balancemm/evaluation/modalitys.py L9-17
    from itertools import combinations
    all_combinations = []
    start_range = 0 if include_empty else 1
    for r in range(start_range, len(input_list) + 1):
        all_combinations.extend(combinations(input_list, r))
    return [list(combo) for combo in all_combinations]


class BbToy(torch.nn.Module):
    """BB's BaseClassifierModel reduced to what AGM touches: `modality_encoder.<m>` (a weight of
    rank 2 and a per-feature scale of rank 1, so a zeroed input gives zero features, as our
    feature zeroing does), `fusion_module.fc_out` (ConcatFusion_N), `forward(batch, padding)`
    zeroing the padded modalities' inputs (avclassify_model.py L330-355)."""

    def __init__(self, d_in, d, C, gen):
        super().__init__()
        self.modalitys = ["audio", "visual"]
        enc = lambda: torch.nn.ParameterDict({"weight": torch.nn.Parameter(torch.randn(d, d_in, generator=gen) * 0.5),
                                              "scale": torch.nn.Parameter(1.0 + 0.3 * torch.randn(d, generator=gen))})
        self.modality_encoder = torch.nn.ModuleDict({"audio": enc(), "visual": enc()})
        self.fusion_module = torch.nn.Module()
        self.fusion_module.fc_out = torch.nn.Linear(2 * d, C)
        with torch.no_grad():
            self.fusion_module.fc_out.weight.copy_(torch.randn(C, 2 * d, generator=gen) * 0.5)
            self.fusion_module.fc_out.bias.copy_(torch.randn(C, generator=gen))
        self.unimodal_result = {}

    def forward(self, batch, padding=[]):
        feats = []
        for modality in self.modalitys:
            x = batch[modality]
            if modality in padding:
                x = torch.zeros_like(x)
            e = self.modality_encoder[modality]
            feats.append((x @ e["weight"].t()) * e["scale"])
        self.unimodal_result = {"output": self.fusion_module.fc_out(torch.cat(feats, 1))}
        return self.unimodal_result


def bb_new_grad(model, batch):
    # AGM_trainer.py L222-266 (newGrad.forward), eval()/train() switches kept (no-ops here)
    modalitys = list(model.modalitys)
    modality_nums = len(modalitys)
    res = {}
    res_cache = {}
    with torch.no_grad():
        model.eval()
        for modality in modalitys:
            temp_modality = list(modalitys)
            temp_modality.remove(modality)
            combinations = generate_all_combinations(temp_modality, include_empty=False)
            for combo in combinations:
                indentifer = tuple(sorted(combo))
                l = len(combo)
                weight = math.factorial(l) * math.factorial(modality_nums - l - 1) / math.factorial(modality_nums)
                if indentifer not in res_cache.keys():
                    padding = [another for another in modalitys if another not in combo]
                    model(batch, padding=padding)
                    out = model.unimodal_result["output"]
                    res_cache[indentifer] = out
                else:
                    out = res_cache[indentifer]
                combo_add = list(combo)
                combo_add.append(modality)
                indentifer = tuple(sorted(combo_add))
                if indentifer not in res_cache.keys():
                    padding = [another for another in modalitys if another not in combo_add]
                    model(batch, padding=padding)
                    out_add = model.unimodal_result["output"]
                    res_cache[indentifer] = out_add
                else:
                    out_add = res_cache[indentifer]
                if modality not in res.keys():
                    res[modality] = weight * (out_add - out)
                else:
                    res[modality] += weight * (out_add - out)
    model.train()
    model(batch)
    out = model.unimodal_result["output"]
    return res, out


def bb_agm_training_step(model, alpha, batch, step, total_batch, epoch, train_scores):
    # AGM_trainer.py L535-589 (training_step), with its loops and clamps as written
    criterion = torch.nn.CrossEntropyLoss()
    softmax = torch.nn.Softmax(dim=1)
    label = batch["label"]
    res, out = bb_new_grad(model, batch)
    loss = criterion(out, label)
    loss.backward()
    scores = {m: 0.0 for m in model.modalitys}
    for modality in model.modalitys:
        out_m = res[modality]
        for k in range(out_m.size(0)):
            if torch.isinf(torch.log(softmax(out_m)[k][label[k]])) or softmax(out_m)[k][label[k]] < 1e-8:
                scores[modality] += -torch.log(torch.tensor(1e-8, dtype=out_m.dtype))
            else:
                scores[modality] += -torch.log(softmax(out_m)[k][label[k]])
        scores[modality] /= out_m.size(0)
    num = len(model.modalitys)
    scores_mean = sum(scores.values()) / num
    train_score_mean = sum(train_scores.values()) / num
    coeffs = {}
    iteration = epoch * total_batch + step + 1
    for modality in model.modalitys:
        ratio = math.exp(num / (num - 1) * (scores[modality].item() - scores_mean.item()))
        optimal_ratio = math.exp(num / (num - 1) * (float(train_scores[modality]) - float(train_score_mean)))
        coeffs[modality] = math.exp(alpha * min(optimal_ratio - ratio, 7))
        train_scores[modality] = train_scores[modality] * (iteration - 1) / iteration + scores[modality].item() / iteration
    for name, parms in model.named_parameters():
        layer = str(name)
        for modality in model.modalitys:
            if modality in layer and len(parms.grad.size()) != 1:
                parms.grad *= coeffs[modality]
    grad_max = torch.max(model.fusion_module.fc_out.weight.grad)
    grad_min = torch.min(model.fusion_module.fc_out.weight.grad)
    clipped = bool(grad_max > 5 or grad_min < -5)
    if clipped:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
    return loss, train_scores, scores, coeffs, res, out, clipped


def agm_bb_steps(**kw):
    # The global generators are left as they were, so the other cases' draws do not move.
    with torch.random.fork_rng(devices=[]):
        return agm_bb_case(**kw)


def agm_bb_case(alpha=0.1, B=6, d_in=5, d=4, C=3, steps=4):
    """BB's AGM over a few steps of one epoch on fixed parameters: inputs, labels, responses,
    scores, coefficients, running means, and every gradient after BB's edit. The inputs grow so
    that the last steps' head gradient leaves [-5, 5] and the clip runs."""
    gen = torch.Generator().manual_seed(29)
    draw = np.random.default_rng(29)
    model = BbToy(d_in, d, C, gen).double()
    train_scores = {m: torch.tensor(0) for m in model.modalitys}  # L487-489
    params = {"audio_weight": model.modality_encoder["audio"]["weight"], "audio_scale": model.modality_encoder["audio"]["scale"],
              "visual_weight": model.modality_encoder["visual"]["weight"], "visual_scale": model.modality_encoder["visual"]["scale"],
              "head_weight": model.fusion_module.fc_out.weight, "head_bias": model.fusion_module.fc_out.bias}
    case = {"alpha": alpha, "B": B, "d_in": d_in, "d": d, "C": C, "params": {k: tolist(v) for k, v in params.items()}, "steps": []}
    for step in range(steps):
        gain = [1.0, 2.0, 12.0, 6.0][step]
        batch = {"audio": gain * torch.randn(B, d_in, dtype=torch.float64, generator=gen),
                 "visual": torch.randn(B, d_in, dtype=torch.float64, generator=gen), "label": torch.tensor(draw.integers(0, C, B))}
        model.zero_grad()
        loss, train_scores, scores, coeffs, res, out, clipped = bb_agm_training_step(model, alpha, batch, step, steps, 0, train_scores)
        case["steps"].append({
            "audio": tolist(batch["audio"]), "visual": tolist(batch["visual"]), "labels": batch["label"].tolist(), "loss": loss.item(),
            "m_a": tolist(res["audio"]), "m_v": tolist(res["visual"]), "fused": tolist(out),
            "score_a": float(scores["audio"]), "score_v": float(scores["visual"]), "k_a": coeffs["audio"], "k_v": coeffs["visual"],
            "t_a": float(train_scores["audio"]), "t_v": float(train_scores["visual"]), "clipped": clipped,
            "grads": {k: tolist(v.grad) for k, v in params.items()},
        })
    assert any(s["clipped"] for s in case["steps"]) and not all(s["clipped"] for s in case["steps"]), "both branches of the clip"
    return case


# ---------------------------------------------------------------- PMR
def calculate_prototype(a_feat, v_feat, labels, C, d, epoch, a_prev, v_prev, momentum_coef):
    audio_prototypes = torch.zeros(C, d)
    visual_prototypes = torch.zeros(C, d)
    count_class = [0 for _ in range(C)]
    for c, l in enumerate(labels):
        l = int(l)
        count_class[l] += 1
        audio_prototypes[l, :] += a_feat[c, :]
        visual_prototypes[l, :] += v_feat[c, :]
    for c in range(audio_prototypes.shape[0]):
        audio_prototypes[c, :] /= count_class[c]
        visual_prototypes[c, :] /= count_class[c]
    if epoch > 0:
        audio_prototypes = (1 - momentum_coef) * audio_prototypes + momentum_coef * a_prev
        visual_prototypes = (1 - momentum_coef) * visual_prototypes + momentum_coef * v_prev
    return audio_prototypes, visual_prototypes


def EU_dist(x1, x2):
    d_matrix = torch.zeros(x1.shape[0], x2.shape[0])
    for i in range(x1.shape[0]):
        for j in range(x2.shape[0]):
            d = torch.sqrt(torch.dot((x1[i] - x2[j]), (x1[i] - x2[j])))
            d_matrix[i, j] = d
    return d_matrix


def pmr_case(alpha, momentum_coef, n=24, C=4, d=5, B=6, visual_ahead=True):
    samples = []
    a_prev = v_prev = None
    for epoch in range(2):
        labels = torch.tensor(list(range(C)) * (n // C))
        a_feat = torch.randn(n, d) + labels[:, None] * 0.7
        v_feat = torch.randn(n, d) + labels[:, None] * (1.5 if visual_ahead else 0.2)
        a_prev, v_prev = calculate_prototype(a_feat, v_feat, labels, C, d, epoch, a_prev, v_prev, momentum_coef)
        samples.append({"audio": tolist(a_feat), "visual": tolist(v_feat), "labels": labels.tolist()})
    y = torch.tensor(rng.integers(0, C, B))
    a = (torch.randn(B, d) + y[:, None] * 0.7).requires_grad_(True)
    v = (torch.randn(B, d) + y[:, None] * (1.5 if visual_ahead else 0.2)).requires_grad_(True)
    out = torch.randn(B, C)  # the fused logits (a constant here: the PCE term is what is checked)
    audio_sim = -EU_dist(a, a_prev)
    visual_sim = -EU_dist(v, v_prev)
    score_a_p = sum([F.softmax(audio_sim, dim=1)[i][y[i]] for i in range(audio_sim.size(0))])
    score_v_p = sum([F.softmax(visual_sim, dim=1)[i][y[i]] for i in range(visual_sim.size(0))])
    ratio_a_p = score_a_p / score_v_p
    loss_proto_a = F.cross_entropy(audio_sim, y)
    loss_proto_v = F.cross_entropy(visual_sim, y)
    if ratio_a_p > 1:
        beta, lam = 0, alpha
    elif ratio_a_p < 1:
        beta, lam = alpha, 0
    else:
        beta = lam = 0
    loss = F.cross_entropy(out, y) + beta * loss_proto_a + lam * loss_proto_v
    loss.backward()
    return {"alpha": alpha, "momentum": momentum_coef, "C": C, "d": d, "B": B, "samples": samples,
            "prototypes_audio": tolist(a_prev), "prototypes_visual": tolist(v_prev),
            "a": tolist(a), "v": tolist(v), "out": tolist(out), "labels": y.tolist(),
            "ratio": ratio_a_p.item(), "loss": loss.item(), "grad_a": tolist(a.grad), "grad_v": tolist(v.grad)}


# ---------------------------------------------------------------- MLA
class GSPlugin:
    """The paper's recursive-least-squares projector (`--mla-projector paper`): the denominator
    is the scalar `alpha + r k`. The released code (below) writes `torch.mm(k, r)`, a d x d matrix."""

    def __init__(self, d):
        self.P = torch.eye(d, dtype=torch.float64)

    def before_update(self, w_grad, before_batch_input, batch_index, len_dataloader, train_exp_counter):
        lamda = batch_index / len_dataloader + 1
        alpha = 1.0 * 0.1 ** lamda
        if train_exp_counter != 0:
            r = torch.mean(before_batch_input, 0, True)
            k = torch.mm(self.P, torch.t(r))
            self.P = torch.sub(self.P, torch.mm(k, torch.t(k)) / (alpha + torch.mm(r, k)))
            pnorm2 = torch.norm(self.P.data, p='fro')
            self.P.data = self.P.data / pnorm2
            w_grad = torch.mm(w_grad, torch.t(self.P.data))
        return w_grad


def mla_case(d=6, C=3, B=5, T=4):
    gs = GSPlugin(d)
    steps = []
    exp_count = 0
    for j in range(3):
        for modality in ["audio", "visual"]:
            feats = torch.randn(B, d, dtype=torch.float64)
            grad = torch.randn(C, d, dtype=torch.float64)  # PyTorch layout [C, d]
            new = gs.before_update(grad, feats, j, T, exp_count)
            steps.append({"batch": j, "modality": modality, "features": tolist(feats), "grad": tolist(grad), "projected": tolist(new)})
            exp_count += 1
    return {"d": d, "C": C, "B": B, "T": T, "steps": steps, "P": tolist(gs.P)}



class GSPluginCode4735bbc:
    """utils/utils.py L12-41 of the authors' commit 4735bbc, literally (the projector on the
    device-free float64; P starts at the identity of the head's input width)."""

    def __init__(self, d):
        with torch.no_grad():
            self.Pl = torch.eye(d, dtype=torch.float64)
        self.exp_count = 0

    def before_update(self, model, before_batch_input, batch_index, len_dataloader, train_exp_counter):
        lamda = batch_index / len_dataloader + 1
        alpha = 1.0 * 0.1 ** lamda
        if train_exp_counter != 0:
            for n, w in model.named_parameters():
                if n == "module.weight" or n == "weight":
                    r = torch.mean(before_batch_input, 0, True)
                    k = torch.mm(self.Pl, torch.t(r))
                    self.Pl = torch.sub(self.Pl, torch.mm(k, torch.t(k)) / (alpha + torch.mm(k, r)))
                    pnorm2 = torch.norm(self.Pl.data, p='fro')
                    self.Pl.data = self.Pl.data / pnorm2
                    w.grad.data = torch.mm(w.grad.data, torch.t(self.Pl.data))


class GSPluginBB:
    """balancemm/trainer/MLA_trainer.py L20-53 (BalanceBenchmark at 4c1482f), literally."""

    def __init__(self, d):
        with torch.no_grad():
            self.Pl = torch.eye(d, dtype=torch.float64)
        self.exp_count = 0

    def before_update(self, model, before_batch_input, batch_index, len_dataloader, train_exp_counter):
        lamda = batch_index / len_dataloader + 1
        alpha = 1.0 * 0.1 ** lamda
        if train_exp_counter != 0:
            for n, w in model.named_parameters():
                if n == "weight":
                    r = torch.mean(before_batch_input, 0, True)
                    k = torch.mm(self.Pl, torch.t(r))
                    self.Pl = torch.sub(self.Pl, torch.mm(k, torch.t(k)) / (alpha + torch.mm(k, r)))
                    pnorm2 = torch.norm(self.Pl.data, p='fro')
                    self.Pl.data = self.Pl.data / pnorm2
                    w.grad.add_(torch.mm(w.grad.data, torch.t(self.Pl.data)))


def mla_code_case(plugin, d=6, C=3, B=5, T=4):
    """A plugin over alternating steps on the shared head `fc_out = nn.Linear(d, C)`, called as
    MLA_trainer.training_step (and main.py) call it: after backward, with the step's detached
    features, the batch's index, the epoch's batches and the plugin's step counter."""
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(8)
        fc_out = torch.nn.Linear(d, C).double()
        gs = plugin(d)
        steps = []
        for j in range(3):
            for modality in ["audio", "visual"]:
                feats = torch.randn(B, d, dtype=torch.float64, generator=gen)
                grad = torch.randn(C, d, dtype=torch.float64, generator=gen)
                fc_out.weight.grad = grad.clone()
                fc_out.bias.grad = torch.zeros(C, dtype=torch.float64)
                gs.before_update(fc_out, feats, j, T, gs.exp_count)
                steps.append({"batch": j, "modality": modality, "features": tolist(feats), "grad": tolist(grad),
                              "projected": tolist(fc_out.weight.grad)})
                gs.exp_count += 1
        return {"d": d, "C": C, "B": B, "T": T, "steps": steps, "P": tolist(gs.Pl)}

def entropy_fusion_case(B=6, C=4):
    o_a = torch.randn(B, C) * 2
    o_v = torch.randn(B, C) * 2
    # avclassify_model.py L673-700 (per sample, dim=1)
    p_a = F.softmax(o_a, dim=1)
    p_v = F.softmax(o_v, dim=1)
    e_a = -torch.sum(p_a * torch.log(p_a), dim=1, keepdim=True)
    e_v = -torch.sum(p_v * torch.log(p_v), dim=1, keepdim=True)
    e_max = torch.max(e_a, e_v)
    w_a = torch.exp(e_max - e_a)
    w_v = torch.exp(e_max - e_v)
    s = w_a + w_v
    out = (w_a / s) * o_a + (w_v / s) * o_v
    return {"B": B, "C": C, "audio": tolist(o_a), "visual": tolist(o_v), "fused": tolist(out)}


# ---------------------------------------------------------------- MMPareto as BalanceBenchmark runs it
def bb_unimodality_calculate(model):
    # avclassify_model.py L281-300 (concat fusion): each modality's slice of fc_out, bias / 2
    out = model.unimodal_result["output"]
    W, b = model.fusion_module.fc_out.weight, model.fusion_module.fc_out.bias
    res, now_size = {}, 0
    for modality in model.modalitys:
        res[modality] = torch.mm(model.feats[modality], torch.transpose(W[:, now_size:now_size + model.d], 0, 1)) + b / 2
        now_size += model.d
    res["output"] = out  # encoder_result's keys: the modalities, then 'output'
    model.unimodal_result = res


def bb_mmpareto_training_step(model, batch, record_names, optimizer, alpha):
    # MMPareto_trainer.py L330-398 (inside the modulation window), as written
    import re
    criterion = torch.nn.CrossEntropyLoss()
    label = batch["label"]
    model(batch)
    bb_unimodality_calculate(model)
    modality_list = model.modalitys
    grads = {}
    for modality in modality_list:
        grads[modality] = {}
    loss = {}
    for modality in model.unimodal_result.keys():
        loss[modality] = criterion(model.unimodal_result[modality], label)
        loss[modality].backward(retain_graph=True)
    for modality in modality_list:
        for loss_type in loss.keys():
            if loss_type == modality:
                for tensor_name, param in record_names[modality]:
                    if loss_type not in grads[modality].keys():
                        grads[modality][loss_type] = {}
                    grads[modality][loss_type][tensor_name] = param.grad.data.clone()
                grads[modality][loss_type]["concat"] = torch.cat([grads[modality][loss_type][tensor_name].flatten() for tensor_name, _ in record_names[modality]])
            if loss_type == 'output':
                for tensor_name, param in record_names[modality]:
                    if loss_type not in grads[modality].keys():
                        grads[modality][loss_type] = {}
                    grads[modality][loss_type][tensor_name] = param.grad.data.clone()
                grads[modality][loss_type]["concat"] = torch.cat([grads[modality][loss_type][tensor_name].flatten() for tensor_name, _ in record_names[modality]])
    optimizer.zero_grad()
    this_cos = {}
    for modality in modality_list:
        this_cos[modality] = F.cosine_similarity(grads[modality]['output']["concat"], grads[modality][modality]["concat"], dim=0)
    weight = {}
    for modality in modality_list:
        weight[modality] = [0, 0]
    for modality in modality_list:
        if (this_cos[modality] > 0):
            weight[modality][0] = 0.5
            weight[modality][1] = 0.5
        else:
            raise AssertionError("BB's min-norm branch (unreachable: its cosine compares a gradient with itself)")
    total_loss = sum(loss.values())
    total_loss.backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            layer = re.split('[_.]', str(name))
            if ('head' in layer):
                continue
            for modality in modality_list:
                if modality in layer:
                    three_norm = torch.norm(param.grad.data.clone())
                    new_grad = 2 * weight[modality][0] * grads[modality]['output'][name] + 2 * weight[modality][1] * grads[modality][modality][name]
                    new_norm = torch.norm(new_grad)
                    diff = three_norm / new_norm
                    if (diff > 1):
                        param.grad = diff * new_grad * alpha
                    else:
                        param.grad = new_grad * alpha
    return {k: float(v) for k, v in this_cos.items()}


class BbParetoToy(BbToy):
    """BbToy keeping its pooled features for BB's unimodality_calculate."""

    def forward(self, batch, padding=[]):
        self.d = self.fusion_module.fc_out.weight.shape[1] // 2
        self.feats = {}
        for modality in self.modalitys:
            e = self.modality_encoder[modality]
            self.feats[modality] = (batch[modality] @ e["weight"].t()) * e["scale"]
        self.unimodal_result = {"output": self.fusion_module.fc_out(torch.cat([self.feats[m] for m in self.modalitys], 1))}
        return self.unimodal_result


def mmpareto_bb_step(alpha=1.5, B=6, d_in=5, d=4, C=3):
    """One BB MMPareto step on a toy: the fused loss's and the uni-modal losses' gradients apart
    (what our Pareto step hands the method), and the gradients BB's training_step leaves."""
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(32)
        model = BbParetoToy(d_in, d, C, gen).double()
        batch = {"audio": torch.randn(B, d_in, dtype=torch.float64, generator=gen), "visual": torch.randn(B, d_in, dtype=torch.float64, generator=gen),
                 "label": torch.randint(0, C, (B,), generator=gen)}
        names = ["modality_encoder.audio.weight", "modality_encoder.audio.scale", "modality_encoder.visual.weight", "modality_encoder.visual.scale",
                 "fusion_module.fc_out.weight", "fusion_module.fc_out.bias"]
        params = dict(model.named_parameters())
        assert sorted(params) == sorted(names)
        # The two gradients apart, by autograd on the same forward.
        model(batch)
        bb_unimodality_calculate(model)
        ce = torch.nn.CrossEntropyLoss()
        r = model.unimodal_result
        g_mm = torch.autograd.grad(ce(r["output"], batch["label"]), [params[n] for n in names], retain_graph=True)
        g_uni = torch.autograd.grad(ce(r["audio"], batch["label"]) + ce(r["visual"], batch["label"]), [params[n] for n in names])
        # MMPareto_trainer.py L282-290: the encoders' parameters per modality
        record_names = {}
        for modality in model.modalitys:
            record_names[modality] = []
        for name, param in model.named_parameters():
            if 'head' in name:
                continue
            for modality in model.modalitys:
                if modality in name:
                    record_names[modality].append((name, param))
                    continue
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        optimizer.zero_grad()
        cos = bb_mmpareto_training_step(model, batch, record_names, optimizer, alpha)
        return {"alpha": alpha, "names": names, "shapes": [list(params[n].shape) for n in names], "cos": cos,
                "mm": [tolist(g) for g in g_mm], "uni": [tolist(g) for g in g_uni], "bb": [tolist(params[n].grad) for n in names]}


# ---------------------------------------------------------------- UMT
def umt_case(B=4, d=5, C=3, scaling=10.0):
    out = torch.randn(B, C, requires_grad=True)
    h_a = torch.randn(B, d, requires_grad=True)
    h_v = torch.randn(B, d, requires_grad=True)
    t_a = torch.randn(B, d)
    t_v = torch.randn(B, d)
    y = torch.tensor(rng.integers(0, C, B))
    loss = F.cross_entropy(out, y) + scaling * F.mse_loss(h_a, t_a) + scaling * F.mse_loss(h_v, t_v)
    loss.backward()
    return {"B": B, "d": d, "C": C, "scaling": scaling, "out": tolist(out), "h_a": tolist(h_a), "h_v": tolist(h_v), "t_a": tolist(t_a),
            "t_v": tolist(t_v), "labels": y.tolist(), "loss": loss.item(), "grad_a": tolist(h_a.grad), "grad_v": tolist(h_v.grad)}


class BbUmtTeacher(torch.nn.Module):
    """A uni-modal teacher as BB builds it (create_model, load_state_dict, .cuda(): never .eval(),
    so `self.training` stays True): an encoder ending in batch norm, its pooled feature in
    `encoder_result[modality]` (here Linear -> BatchNorm1d -> ReLU)."""

    def __init__(self, modality, d_in, d, gen):
        super().__init__()
        self.modality = modality
        self.fc = torch.nn.Linear(d_in, d)
        self.bn = torch.nn.BatchNorm1d(d)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(d, d_in, generator=gen) * 0.5)
            self.fc.bias.copy_(torch.randn(d, generator=gen) * 0.3)
            self.bn.weight.copy_(1.0 + 0.2 * torch.randn(d, generator=gen))
            self.bn.bias.copy_(0.3 * torch.randn(d, generator=gen))
            self.bn.running_mean.copy_(torch.randn(d, generator=gen))
            self.bn.running_var.copy_(0.5 + torch.rand(d, generator=gen))
        self.encoder_result = {}

    def forward(self, batch):
        self.encoder_result = {self.modality: torch.relu(self.bn(self.fc(batch[self.modality])))}
        return self.encoder_result


def umt_bb_case(B=6, d_in=4, d=5, C=3, scaling=10.0):
    """BB's UMT training_step (UMT_trainer.py L129-146) with its teachers as BB leaves them (in
    training mode): the student's features and logits are given; the teachers' features in
    training mode (what BB distils towards) and, for contrast, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(30)
        teachers = {m: BbUmtTeacher(m, d_in, d, gen).double() for m in ["audio", "visual"]}
        batch = {m: 2.0 * torch.randn(B, d_in, dtype=torch.float64, generator=gen) + 0.5 for m in teachers}
        batch["label"] = torch.randint(0, C, (B,), generator=gen)
        student = {m: torch.randn(B, d, dtype=torch.float64, generator=gen).requires_grad_() for m in teachers}
        out = torch.randn(B, C, dtype=torch.float64, generator=gen).requires_grad_()
        case = {"B": B, "d_in": d_in, "d": d, "C": C, "scaling": scaling, "labels": batch["label"].tolist(), "out": tolist(out),
                "teachers": {m: {"x": tolist(batch[m]), "weight": tolist(t.fc.weight), "bias": tolist(t.fc.bias), "gamma": tolist(t.bn.weight),
                                 "beta": tolist(t.bn.bias), "running_mean": tolist(t.bn.running_mean), "running_var": tolist(t.bn.running_var)}
                             for m, t in teachers.items()},
                "student": {m: tolist(h) for m, h in student.items()}}
        with torch.no_grad():
            for m, t in teachers.items():
                t.eval()
                case["teachers"][m]["eval_features"] = tolist(t(batch)[m])
                t.train()  # as BB leaves it (and as it was before the line above)
        # training_step, as written
        criterion = torch.nn.CrossEntropyLoss()
        MSE = torch.nn.MSELoss()
        label = batch["label"]
        loss = criterion(out, label)
        for modality in teachers.keys():
            with torch.no_grad():
                teachers[modality](batch)
            out_unimodal = teachers[modality].encoder_result[modality]
            case["teachers"][modality]["train_features"] = tolist(out_unimodal)
            loss += scaling * MSE(out_unimodal, student[modality])
        loss.backward()
        case["loss"] = loss.item()
        case["grads"] = {m: tolist(h.grad) for m, h in student.items()}
        return case


# ---------------------------------------------------------------- Gradient-Blending as BB runs it
class BbBlendToy(torch.nn.Module):
    """BB's BaseClassifierModel reduced to what Gradient-Blending's estimate touches: a linear
    encoder per modality (with a bias, so a zeroed input is not a zeroed feature),
    `fusion_module.fc_out` on the concatenation, `forward(batch, padding)` zeroing the padded
    modalities' raw inputs (avclassify_model.py L330-355), the fused logits in
    `unimodal_result['output']`."""

    def __init__(self, d_in, d, C, gen):
        super().__init__()
        self.modalitys = ["audio", "visual"]
        self.modality_encoder = torch.nn.ModuleDict({m: torch.nn.Linear(d_in, d) for m in self.modalitys})
        self.fusion_module = torch.nn.Module()
        self.fusion_module.fc_out = torch.nn.Linear(2 * d, C)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.unimodal_result = {}

    def forward(self, batch, padding=[]):
        feats = []
        for modality in self.modalitys:
            x = batch[modality]
            if modality in padding:
                x = torch.zeros_like(x)
            feats.append(self.modality_encoder[modality](x))
        self.unimodal_result = {"output": self.fusion_module.fc_out(torch.cat(feats, 1))}
        return self.unimodal_result


def bb_super_epoch_origin(model, temp_model, super_epoch, train_loader, test_loader, optimizer, optimizer_origin):
    # GBlending_trainer.py L306-375, as written (progress bars, prints and the logger left out)
    temp_model.load_state_dict(model.state_dict(), strict=True)
    criterion = torch.nn.CrossEntropyLoss()
    weights = {}
    losses = {}
    modalitys = list(temp_model.modalitys)
    modalitys.append('output')
    for modality in modalitys:
        temp_model.load_state_dict(model.state_dict(), strict=True)
        optimizer.load_state_dict(optimizer_origin)
        padding = []
        pre_train_loss = 0
        now_train_loss = 0
        pre_validation_loss = 0
        now_validation_loss = 0
        for other_modality in temp_model.modalitys:
            if other_modality != modality and modality != 'output':
                padding.append(other_modality)
        for epoch in range(super_epoch):
            temp_model.train()
            _loss = 0.0
            for batch_idx, batch in enumerate(train_loader):
                optimizer.zero_grad()
                temp_model(batch, padding=padding)
                out = temp_model.unimodal_result['output']
                loss = criterion(out, batch['label'])
                loss.backward()
                optimizer.step()
                _loss += loss.item()
            if epoch == 0 or epoch == super_epoch - 1:
                temp_model.eval()
                with torch.no_grad():
                    _loss_v = 0
                    for batch_idx, batch in enumerate(test_loader):
                        temp_model(batch, padding=padding)
                        out = temp_model.unimodal_result['output']
                        loss = criterion(out, batch['label'])
                        _loss_v += loss.item()
                    if epoch == 0:
                        pre_train_loss = _loss
                        pre_validation_loss = _loss_v
                    else:
                        now_train_loss = _loss
                        now_validation_loss = _loss_v
        g = now_validation_loss - pre_validation_loss
        o_pre = pre_validation_loss - pre_train_loss
        o_now = now_validation_loss - now_train_loss
        o = o_now - o_pre
        weights[modality] = abs((g) / (o ** 2))
        losses[modality] = {"train_first": pre_train_loss, "val_first": pre_validation_loss, "train_last": now_train_loss, "val_last": now_validation_loss}
    sums = sum(weights.values())
    for modality in weights.keys():
        weights[modality] /= sums
    return weights, losses


def gblend_bb_case(d_in=4, d=3, C=3, train_sizes=(8, 8, 8), val_sizes=(6, 5), super_epoch=3, lr=0.05, weight_decay=0.01):
    """BB's estimate on a toy: its model, a temp model and AdamW as train.py L83-87 builds them
    (the optimiser's initial state saved), fixed train and test batches in loader order."""
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(31)
        model = BbBlendToy(d_in, d, C, gen)
        temp_model = BbBlendToy(d_in, d, C, gen)
        temp_optimizer = torch.optim.AdamW(temp_model.parameters(), lr=lr, weight_decay=weight_decay)
        temp_optimizer_origin = copy.deepcopy(temp_optimizer.state_dict())
        def batch(n):
            label = torch.randint(0, C, (n,), generator=gen)
            # Audio carries the label, vision only noise: the heads generalise differently.
            audio = torch.randn(n, d_in, generator=gen) + torch.nn.functional.one_hot(label, d_in).float() * 2.0
            return {"audio": audio, "visual": torch.randn(n, d_in, generator=gen), "label": label}
        train = [batch(n) for n in train_sizes]
        test = [batch(n) for n in val_sizes]
        params = {"audio_weight": model.modality_encoder["audio"].weight, "audio_bias": model.modality_encoder["audio"].bias,
                  "visual_weight": model.modality_encoder["visual"].weight, "visual_bias": model.modality_encoder["visual"].bias,
                  "head_weight": model.fusion_module.fc_out.weight, "head_bias": model.fusion_module.fc_out.bias}
        case = {"d_in": d_in, "d": d, "C": C, "super_epoch": super_epoch, "lr": lr, "weight_decay": weight_decay,
                "params": {k: tolist(v) for k, v in params.items()},
                "train": [{"audio": tolist(b["audio"]), "visual": tolist(b["visual"]), "label": b["label"].tolist()} for b in train],
                "test": [{"audio": tolist(b["audio"]), "visual": tolist(b["visual"]), "label": b["label"].tolist()} for b in test]}
        weights, losses = bb_super_epoch_origin(model, temp_model, super_epoch, train, test, temp_optimizer, temp_optimizer_origin)
        case["weights"] = weights
        case["losses"] = losses
        return case


def main():
    # Scores as an AGM run records them: drift from audio-ahead to visual-ahead, with noise.
    scores = [(1.6 - 0.05 * i + 0.1 * rng.standard_normal(), 1.2 - 0.02 * i + 0.1 * rng.standard_normal()) for i in range(40)]
    goldens = {
        "opm": opm_cases(),
        "mmpareto": mmpareto_cases(),
        "agm": {"alpha": 1.0, "scores": scores, "official": agm_sequence(scores, 1.0), "bb": agm_bb_sequence(scores, 1.0),
                "hooks": [agm_hooks(), agm_hooks(k_a=1.9, k_v=0.3)], "bb_steps": agm_bb_steps()},
        "pmr": [pmr_case(1.0, 0.2, visual_ahead=True), pmr_case(2.0, 0.0, visual_ahead=False)],
        "mla": mla_case(),
        "mla_code": mla_code_case(GSPluginCode4735bbc),
        "mla_bb": mla_code_case(GSPluginBB),
        "entropy_fusion": entropy_fusion_case(),
        "umt": umt_case(),
        "umt_bb": umt_bb_case(),
        "gblend_bb": gblend_bb_case(),
        "mmpareto_bb_step": mmpareto_bb_step(),
    }
    out = Path(__file__).with_name("successors.json")
    out.write_text(json.dumps(goldens))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
