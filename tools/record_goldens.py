#!/usr/bin/python3
"""record_goldens: records PyTorch 1.13 results as the golden fixtures tests/golden/*.json.

Run with Debian's PyTorch (``/usr/bin/python3``, package ``python3-torch``)::

    deno task goldens                          # all files
    /usr/bin/python3 tools/record_goldens.py [--out tests/golden] [NAME ...]

NAME is one of layers, models, losses, optim, penalties, attacks, train. The
computations are those of the live comparisons and run through the same oracles,
imported rather than copied: tools/torch_bridge.py (layers, models, training),
tools/torch_jacobian.py (Jacobian, determinant and gradient-norm penalties by
double backprop), tools/torch_penalties.py (L1, L2, soft SVB),
tools/torch_optim_check.py (optimizers, cross-entropy, MSE) and
tools/torch_attacks.py (FGSM, PGD, PGD-L2, CW). tests/golden_recorded_test.ts
replays every case in regula without torch.

Inputs are not stored but described by ``{"shape", "seed", "lo", "hi"}``: the
float32 values of ``randomArray(n, seed, lo, hi)`` of tests/_util.ts
(mulberry32), which ``uniform`` below reproduces bit for bit. Parameters are
described the same way, by ``state_dict`` name. Outputs are
``{"shape", "f32": base64 of little-endian float32}``; a tensor of more than
``CAP`` values keeps every ``stride``-th value and its ``absmax`` (the
relative errors of the tests divide by the largest magnitude). Scalars are
JSON numbers.
"""

import argparse
import base64
import datetime
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bridge as tb  # noqa: E402
import torch_jacobian as tj  # noqa: E402
import torch_optim_check as toc  # noqa: E402
import torch_penalties as tp  # noqa: E402
import torch_attacks as ta  # noqa: E402

import torch  # noqa: E402

CAP = 2048
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------
# Inputs and encodings


def uniform(n, seed, lo=-1.0, hi=1.0):
    """float32 twin of randomArray (tests/_util.ts): mulberry32, one draw per value."""
    k = np.arange(1, n + 1, dtype=np.uint64)
    s = ((np.uint64(seed & 0xFFFFFFFF) + k * np.uint64(0x6D2B79F5)) & np.uint64(0xFFFFFFFF))
    t = s.astype(np.uint32)
    with np.errstate(over="ignore"):
        t = (t ^ (t >> np.uint32(15))) * (t | np.uint32(1))
        t = t ^ (t + (t ^ (t >> np.uint32(7))) * (t | np.uint32(61)))
    u = (t ^ (t >> np.uint32(14))).astype(np.float64) / 4294967296.0
    return (lo + (hi - lo) * u).astype(np.float32)


def desc(shape, seed, lo=-1.0, hi=1.0):
    return {"shape": list(shape), "seed": seed, "lo": lo, "hi": hi}


def make(d):
    """The float32 values a descriptor stands for, shaped."""
    n = int(np.prod(d["shape"], dtype=np.int64))
    return uniform(n, d["seed"], d["lo"], d["hi"]).reshape(d["shape"])


def enc(a, cap=CAP):
    a = np.asarray(a, dtype=np.float64)
    flat = a.reshape(-1)
    out = {"shape": list(a.shape)}
    if flat.size > cap:
        stride = -(-flat.size // cap)
        out["stride"] = stride
        out["absmax"] = float(np.abs(flat).max())
        flat = flat[::stride]
    out["f32"] = base64.b64encode(flat.astype("<f4").tobytes()).decode()
    return out


def state_entries(model):
    """(name, shape, is_float) of every state_dict entry of a bridge model description."""
    _, init = tb._build({"model": model, "init_seed": 0}, {}, set())
    return [(k[5:], v.shape, v.dtype.kind == "f") for k, v in init.items()]


def param_descs(model, seed, gain=1.0):
    """Seeded values for every float state_dict entry, by the rule of initParams
    (tests/_jacobian_util.ts): weights +-gain sqrt(3 / fan_in), 1-d weights and weight norm
    gains in [0.5, 1.5], biases +-0.1, running statistics non-trivial."""
    out = {}
    for i, (name, shape, is_float) in enumerate(state_entries(model)):
        if not is_float:
            continue
        n = int(np.prod(shape, dtype=np.int64))
        if name.endswith("running_var"):
            lo, hi = 0.5, 2.0
        elif name.endswith("running_mean"):
            lo, hi = -0.3, 0.3
        elif name.endswith(("weight", "weight_v")) and len(shape) >= 2:
            a = gain * float(np.sqrt(3 / (n / shape[0])))
            lo, hi = -a, a
        elif name.endswith(("weight", "weight_g")):
            lo, hi = 0.5, 1.5
        else:
            lo, hi = -0.1, 0.1
        out[name] = desc(shape, seed + i, lo, hi)
    return out


def state_inputs(model, params):
    """Bridge inputs for the state_dict: the seeded values, integer counters 0."""
    inputs = {}
    for name, shape, is_float in state_entries(model):
        inputs[name] = make(params[name]).astype(np.float64) if is_float \
            else np.zeros(shape, dtype=np.int64)
    return inputs


# ---------------------------------------------------------------------------
# Cases


def forward_case(name, model, x_shape, seed, *, mode="eval", tol=1e-5, gain=1.0, x_range=(-1, 1),
                 labels=False, label_smoothing=0.0, jvp=True, param_grads=True, grad_tol=None):
    """tools/torch_bridge.py "forward": logits, gradients of sum(logits * dy) (or of the mean
    cross-entropy with labels) w.r.t. the input and every parameter, jvp, running statistics."""
    params = param_descs(model, 1000 * seed, gain)
    x = desc(x_shape, seed + 1, *x_range)
    inputs = {**state_inputs(model, params), "x": make(x).astype(np.float64)}
    spec = {"op": "forward", "model": model, "mode": mode, "param_grads": param_grads,
            "return_state": True, "label_smoothing": label_smoothing}
    probe, _ = tb.run({**spec, "param_grads": False}, dict(inputs), None)
    out_shape = list(probe["logits"].shape)
    case = {"name": name, "kind": "forward", "model": model, "mode": mode, "params": params,
            "x": x, "tol": tol, "grad_tol": grad_tol or tol, "param_grads": param_grads}
    if labels:
        b, c = out_shape
        case["y"] = [(3 * i + seed) % c for i in range(b)]
        case["label_smoothing"] = label_smoothing
        inputs["y"] = np.array(case["y"], dtype=np.int64)
    else:
        case["dy"] = desc(out_shape, seed + 2)
        inputs["dy"] = make(case["dy"]).astype(np.float64)
    if jvp:
        case["tx"] = desc(x_shape, seed + 3)
        inputs["tx"] = make(case["tx"]).astype(np.float64)
    r, _ = tb.run(spec, inputs, None)
    out = {"logits": enc(r["logits"]), "grad.x": enc(r["grad.x"])}
    if "loss" in r:
        out["loss"] = float(r["loss"])
    if jvp:
        out["jvp"] = enc(r["jvp"])
    for k, v in r.items():
        if k.startswith("grad.") and k != "grad.x":
            out[k] = enc(v)
        if k.startswith("state.") and "running_" in k and mode == "train":
            out[k] = enc(v)
    case["out"] = out
    return case


def lenet_layers(act):
    return [
        {"type": "normalize", "mean": [0.1307], "std": [0.3081]},
        {"type": "conv2d", "name": "conv1", "in": 1, "out": 6, "kernel": 5, "padding": 2},
        {"type": act}, {"type": "maxpool2d", "kernel": 2},
        {"type": "conv2d", "name": "conv2", "in": 6, "out": 16, "kernel": 5},
        {"type": act}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
        {"type": "linear", "name": "fc1", "in": 400, "out": 120}, {"type": act},
        {"type": "linear", "name": "fc2", "in": 120, "out": 84}, {"type": act},
        {"type": "linear", "name": "fc3", "in": 84, "out": 10},
    ]


MLP_TANH = [
    {"type": "linear", "name": "fc1", "in": 2, "out": 8}, {"type": "tanh"},
    {"type": "linear", "name": "fc2", "in": 8, "out": 8}, {"type": "tanh"},
    {"type": "linear", "name": "fc3", "in": 8, "out": 4},
]


def layers_cases():
    L = lambda *ls: {"layers": list(ls)}  # noqa: E731
    conv = {"type": "conv2d", "name": "conv", "in": 3, "out": 4, "kernel": 3}
    cases = [
        ("linear", L({"type": "linear", "name": "fc", "in": 7, "out": 5}), [4, 7], {}),
        ("linear no bias", L({"type": "linear", "name": "fc", "in": 6, "out": 3, "bias": False}),
         [3, 6], {}),
        ("conv2d k3", L(conv), [2, 3, 7, 6], {}),
        ("conv2d k3 stride 2 padding 1",
         L({**conv, "stride": 2, "padding": 1}), [2, 3, 9, 8], {}),
        ("conv2d k2 padding 2 no bias",
         L({**conv, "kernel": 2, "padding": 2, "bias": False}), [1, 3, 5, 5], {}),
        ("maxpool2d k2", L({"type": "maxpool2d", "kernel": 2}), [2, 3, 6, 8], {}),
        ("maxpool2d k3 stride 2 padding 1",
         L({"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1}), [2, 2, 7, 7], {}),
        ("avgpool2d k2", L({"type": "avgpool2d", "kernel": 2}), [2, 3, 6, 8], {}),
        ("avgpool2d k3 stride 2 padding 1",
         L({"type": "avgpool2d", "kernel": 3, "stride": 2, "padding": 1}), [2, 2, 7, 7], {}),
        ("batchnorm2d eval", L({"type": "batchnorm2d", "name": "bn", "channels": 3}),
         [2, 3, 4, 5], {}),
        ("batchnorm2d train", L({"type": "batchnorm2d", "name": "bn", "channels": 3}),
         [2, 3, 4, 5], {"mode": "train", "jvp": False, "tol": 1e-4}),
        ("batchnorm1d eval", L({"type": "batchnorm1d", "name": "bn", "channels": 6}),
         [5, 6], {}),
        ("batchnorm1d train", L({"type": "batchnorm1d", "name": "bn", "channels": 6}),
         [5, 6], {"mode": "train", "jvp": False, "tol": 1e-4}),
        ("layernorm (C, H, W)", L({"type": "layernorm", "name": "ln", "shape": [3, 4, 5]}),
         [2, 3, 4, 5], {"x_range": (-2, 3)}),
        ("layernorm last axis", L({"type": "layernorm", "name": "ln", "shape": [7]}),
         [4, 7], {"x_range": (-2, 3)}),
        ("groupnorm 2 groups",
         L({"type": "groupnorm", "name": "gn", "groups": 2, "channels": 4}), [2, 4, 3, 3],
         {"x_range": (-2, 3)}),
        ("weight norm linear",
         L({"type": "linear", "name": "fc", "in": 6, "out": 4, "weight_norm": True}), [3, 6], {}),
        ("weight norm conv2d",
         L({**conv, "padding": 1, "weight_norm": True}), [2, 3, 5, 5], {}),
        ("relu", L({"type": "relu"}), [4, 9], {}),
        ("tanh", L({"type": "tanh"}), [4, 9], {"x_range": (-3, 3)}),
        ("sigmoid", L({"type": "sigmoid"}), [4, 9], {"x_range": (-4, 4)}),
        ("leaky_relu", L({"type": "leaky_relu"}), [4, 9], {}),
        ("softplus", L({"type": "softplus"}), [4, 9], {"x_range": (-4, 4)}),
        ("basic block stride 2 (projection) eval",
         L({"type": "basic_block", "name": "blk", "in": 2, "out": 4, "stride": 2}),
         [2, 2, 6, 6], {"tol": 1e-4}),
        ("basic block identity train",
         L({"type": "basic_block", "name": "blk", "in": 3, "out": 3}), [2, 3, 5, 5],
         {"mode": "train", "jvp": False, "tol": 1e-4}),
    ]
    return [forward_case(n, m, s, 10 * (i + 1), **kw) for i, (n, m, s, kw) in enumerate(cases)]


NORM1 = {"mean": [0.1307], "std": [0.3081]}
NORM3 = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def models_cases():
    # The models' tolerances of tests/models_test.ts: logits 1e-4, gradients and jvp 2e-4.
    kw = {"tol": 1e-4, "grad_tol": 2e-4}
    return [
        forward_case("lenet tanh", {"kind": "lenet", "activation": "tanh", "normalize": NORM1},
                     [3, 1, 28, 28], 100, x_range=(0, 1), labels=True, **kw),
        forward_case("lenet relu", {"kind": "lenet", "activation": "relu", "normalize": NORM1},
                     [2, 1, 28, 28], 110, x_range=(0, 1), **kw),
        forward_case("ddnet (eval)", {"kind": "ddnet", "normalize": NORM3}, [2, 3, 32, 32], 120,
                     x_range=(0, 1), labels=True, **kw),
        forward_case("mlp tanh", {"kind": "mlp", "inputs": 2, "hidden": [64, 64], "classes": 4,
                                  "activation": "tanh"}, [5, 2], 130, labels=True,
                     label_smoothing=0.1, **kw),
        # As tests/models_test.ts: the whole ResNet-18 at batch 2 on 16x16 inputs, eval mode,
        # the input gradient only (software adapters).
        forward_case("resnet18 (eval, 16x16)", {"kind": "resnet18", "inputSize": 16,
                                                "normalize": NORM3},
                     [2, 3, 16, 16], 7, x_range=(0, 1), param_grads=False, **kw),
    ]


def losses_cases():
    cases = []
    for i, (b, k, smoothing, reduction, scale) in enumerate(
            [(5, 7, 0.0, "mean", 3), (4, 10, 0.1, "mean", 5), (3, 6, 0.2, "sum", 30)]):
        z = desc([b, k], 20 + i, -scale, scale)
        y = [(2 * j + i) % k for j in range(b)]
        r = toc.run_cross_entropy({"shape": [b, k], "logits": make(z).reshape(-1).tolist(),
                                   "labels": y, "label_smoothing": smoothing,
                                   "reduction": reduction})
        cases.append({"name": f"cross-entropy {reduction} smoothing {smoothing}",
                      "kind": "cross_entropy", "logits": z, "labels": y,
                      "label_smoothing": smoothing, "reduction": reduction,
                      "out": {"loss": r["loss"], "grad": enc(np.reshape(r["grad"], [b, k]))}})
    for i, (shape, reduction) in enumerate([([17, 3], "mean"), ([5, 11], "sum")]):
        pred, target = desc(shape, 40 + i, -3, 3), desc(shape, 50 + i, -3, 3)
        r = toc.run_mse({"shape": shape, "pred": make(pred).reshape(-1).tolist(),
                         "target": make(target).reshape(-1).tolist(), "reduction": reduction})
        cases.append({"name": f"mse {reduction}", "kind": "mse", "pred": pred, "target": target,
                      "reduction": reduction,
                      "out": {"loss": r["loss"], "grad": enc(np.reshape(r["grad"], shape))}})
    return cases


def optim_cases():
    shapes = [[3, 4], [5]]
    runs = [
        ("sgd momentum", "sgd", {"momentum": 0.9}, {"momentum": 0.9}),
        ("sgd nesterov weight decay", "sgd", {"momentum": 0.9, "nesterov": True,
                                              "weightDecay": 5e-4},
         {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}),
        ("sgd dampening weight decay", "sgd", {"momentum": 0.8, "dampening": 0.3,
                                               "weightDecay": 0.05},
         {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05}),
        ("adam", "adam", {}, {}),
        ("adam amsgrad weight decay", "adam", {"betas": [0.8, 0.99], "eps": 1e-6,
                                               "weightDecay": 0.01, "amsgrad": True},
         {"betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.01, "amsgrad": True}),
    ]
    cases = []
    for i, (name, alg, opts, topts) in enumerate(runs):
        steps = 4
        lrs = [0.1, 0.05, 0.05, 0.02]
        init = [desc(s, 60 + 10 * i + j) for j, s in enumerate(shapes)]
        grads = [[desc(s, 1000 + 100 * i + 10 * t + j, -0.5, 0.5) for j, s in enumerate(shapes)]
                 for t in range(steps)]
        r = toc.run_optim({
            "algorithm": alg, "options": topts, "lrs": lrs,
            "params": [{"shape": d["shape"], "data": make(d).reshape(-1).tolist()} for d in init],
            "grads": [[make(d).reshape(-1).tolist() for d in g] for g in grads],
        })
        cases.append({"name": name, "kind": "optim", "algorithm": alg, "options": opts,
                      "lrs": lrs, "init": init, "grads": grads,
                      "out": {"trajectory": [[enc(np.reshape(p, s)) for p, s in zip(step, shapes)]
                                             for step in r["trajectory"]]}})
    return cases


def penalties_cases():
    cases = []
    zoo = [
        {"type": "conv2d", "name": "conv1", "in": 2, "out": 3, "kernel": 3, "padding": 1},
        {"type": "batchnorm2d", "name": "bn1", "channels": 3}, {"type": "softplus"},
        {"type": "maxpool2d", "kernel": 3, "stride": 2}, {"type": "flatten"},
        {"type": "linear", "name": "fc1", "in": 48, "out": 6}, {"type": "sigmoid"},
        {"type": "linear", "name": "fc2", "in": 6, "out": 4},
    ]
    square = [{"type": "linear", "name": "fc1", "in": 3, "out": 6}, {"type": "tanh"},
              {"type": "linear", "name": "fc2", "in": 6, "out": 3}]
    # (name, op, layers, x shape, extra spec, gain, tolerance of values, of gradients)
    runs = [
        ("jacobian MLP projected", "jacobian", MLP_TANH, [5, 2], {"nproj": 3}, 1.0, 1e-5, 1e-4),
        ("jacobian MLP exact", "jacobian", MLP_TANH, [4, 2], {"nproj": -1}, 1.0, 1e-5, 1e-4),
        ("jacobian LeNet-relu projected", "jacobian", lenet_layers("relu"), [2, 1, 28, 28],
         {"nproj": 2}, 1.0, 1e-5, 1e-4),
        ("jacobian zoo exact", "jacobian", zoo, [3, 2, 9, 9], {"nproj": -1}, 1.0, 1e-5, 1e-4),
        ("determinant MLP (J^T J)", "determinant", MLP_TANH, [6, 2], {}, 1.5, 1e-4, 1e-4),
        ("determinant square (det J)", "determinant", square, [5, 3], {}, 1.5, 1e-4, 1e-4),
        ("gradient norm MLP", "gradient_norm", MLP_TANH, [5, 2], {}, 1.5, 1e-5, 1e-4),
        ("gradient norm zoo, smoothing", "gradient_norm", zoo, [3, 2, 9, 9],
         {"label_smoothing": 0.1}, 1.5, 1e-5, 1e-4),
    ]
    for i, (name, op, layers, x_shape, extra, gain, tol, grad_tol) in enumerate(runs):
        seed = 300 + 10 * i
        model = {"layers": layers}
        params = param_descs(model, 1000 * seed, gain)
        x = desc(x_shape, seed + 1, 0, 1)
        lam = {"jacobian": 0.7, "determinant": 0.3, "gradient_norm": 0.4}[op]
        spec = {"op": op, "model": model, "lambda": lam, **extra}
        inputs = {**state_inputs(model, params), "x": make(x).astype(np.float64)}
        case = {"name": name, "kind": op, "layers": layers, "params": params, "x": x,
                "lambda": lam, "tol": tol, "grad_tol": grad_tol, **extra}
        b = x_shape[0]
        probe, _ = tb.run({"op": "forward", "model": model}, dict(inputs), None)
        c = probe["logits"].shape[1]
        if op == "jacobian" and extra["nproj"] > 0:
            case["v"] = desc([extra["nproj"], b, c], seed + 2)
            inputs["v"] = make(case["v"]).astype(np.float64)
        if op == "gradient_norm":
            case["y"] = [(3 * j + i) % c for j in range(b)]
            inputs["y"] = np.array(case["y"], dtype=np.int32)
        r = tj.run(spec, inputs)
        case["out"] = {"value": float(r["value"][0]), "per_sample": enc(r["per_sample"]),
                       **{k: enc(v) for k, v in r.items() if k.startswith("grad.")}}
        cases.append(case)
    weights = [("conv1.weight", [6, 1, 5, 5]), ("conv2.weight", [16, 6, 3, 3]),
               ("fc1.weight", [10, 84]), ("fc2.weight", [20, 12])]
    bounds = [float(np.sqrt(3 / np.prod(s[1:]))) for _, s in weights]
    descs = [desc(s, 400 + j, -a, a) for j, ((_, s), a) in enumerate(zip(weights, bounds))]
    for kind, lam in [("l1", 1e-3), ("l2", 5e-4), ("soft_svb", 1e-2)]:
        value, grads = 0.0, {}
        for (name, shape), d in zip(weights, descs):
            w = base64.b64encode(make(d).astype("<f4").tobytes()).decode()
            r = tp.run({"kind": kind, "shape": shape, "w": w, "lambda": lam})
            value += r["value"]
            grads["grad." + name] = enc(np.frombuffer(base64.b64decode(r["grad"]), "<f8")
                                        .reshape(shape))
        cases.append({"name": f"{kind} penalty", "kind": "weight_penalty", "penalty": kind,
                      "lambda": lam, "weights": dict(zip([n for n, _ in weights], descs)),
                      "tol": 1e-4, "out": {"value": value, **grads}})
    return cases


ATTACK_MODEL = {"layers": [
    {"type": "normalize", "mean": [0.5], "std": [0.25]},
    {"type": "conv2d", "name": "conv1", "in": 1, "out": 4, "kernel": 3, "padding": 1},
    {"type": "relu"}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
    {"type": "linear", "name": "fc1", "in": 16, "out": 12}, {"type": "tanh"},
    {"type": "linear", "name": "fc2", "in": 12, "out": 3},
]}


def attacks_cases():
    n = 24
    params = param_descs(ATTACK_MODEL, 500000, 1.5)
    x = desc([n, 1, 4, 4], 501, 0.05, 0.95)
    y = [i % 3 for i in range(n)]
    target = [(i + 1) % 3 for i in range(n)]
    inputs = {k: v.astype(np.float32) if v.dtype.kind == "f" else v
              for k, v in state_inputs(ATTACK_MODEL, params).items()}
    inputs["x"] = make(x)
    runs = [
        ("fgsm", {"attack": "fgsm", "eps": 0.1}),
        ("fgsm targeted", {"attack": "fgsm", "eps": 0.1, "targeted": True}),
        ("pgd", {"attack": "pgd", "eps": 0.1, "alpha": 0.02, "steps": 10}),
        ("pgd targeted", {"attack": "pgd", "eps": 0.15, "alpha": 0.03, "steps": 8,
                          "targeted": True}),
        ("pgdL2", {"attack": "pgdl2", "eps": 0.5, "alpha": 0.1, "steps": 10}),
        ("cw (one c)", {"attack": "cw", "c": 0.5, "kappa": 0.1, "steps": 30, "lr": 0.02}),
    ]
    cases = []
    for name, spec in runs:
        labels = target if spec.get("targeted") else y
        r = ta.run({"model": ATTACK_MODEL, **spec},
                   {**inputs, "y": np.array(labels, dtype=np.int32)})
        cases.append({"name": name, "spec": spec, "labels": labels,
                      "out": {"adv": enc(r["adv"])}})
    return [{"name": "attack model", "kind": "attacks", "model": ATTACK_MODEL, "params": params,
             "x": x, "tol": 1e-5, "attacks": cases}]


def band_images(xd, yd):
    """tests/golden_train_test.ts's inputs: a bright band of rows whose position is the label."""
    for i, k in enumerate(yd):
        xd[i, 0, 2 * k + 4:2 * k + 7, 4:24] += 0.5
    return xd


def train_cases():
    s, b = 2, 32
    model = {"kind": "lenet", "activation": "tanh", "normalize": NORM1}
    params = param_descs(model, 600000)
    y = [(i * 7 + 3) % 10 for i in range(s * b)]
    x = desc([s * b, 1, 28, 28], 2024, 0, 0.5)
    xd = band_images(make(x).copy(), y).reshape(s, b, 1, 28, 28)
    steps, lr, momentum = 20, 0.05, 0.9
    inputs = {**state_inputs(model, params), "x": xd.astype(np.float64),
              "y": np.array(y, dtype=np.int64).reshape(s, b)}
    r, _ = tb.run({"op": "train_sgd", "model": model, "steps": steps, "lr": lr,
                   "momentum": momentum}, inputs, None)
    losses = r["losses"].tolist()
    if not losses[-1] < 0.5 * losses[0]:
        raise SystemExit(f"record_goldens: the LeNet loss should fall, got {losses}")
    return [{"name": "lenet tanh 20 SGD steps", "kind": "train_sgd", "model": model,
             "params": params, "x": x, "inputs": "band", "batches": s, "y": y, "steps": steps,
             "lr": lr, "momentum": momentum, "loss_rtol": 1e-4, "weight_tol": 1e-3,
             "out": {"losses": losses,
                     **{k: enc(v) for k, v in r.items()
                        if k.startswith("state.") and v.dtype.kind == "f"}}}]


def _dumps(doc):
    """JSON, one key a line, but lists of numbers (shapes, labels, losses) on one line."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


FILES = {
    "layers": (layers_cases, "forward, input and parameter gradients and jvp of each layer kind"),
    "models": (models_cases, "LeNet tanh/relu, DDNet, MLP, ResNet-18: logits and gradients"),
    "losses": (losses_cases, "cross-entropy (label smoothing, reductions) and MSE"),
    "optim": (optim_cases, "SGD (momentum, nesterov, dampening, weight decay) and Adam, 4 steps"),
    "penalties": (penalties_cases, "Jacobian, determinant, gradient-norm penalties by double "
                                   "backprop; L1, L2, soft SVB"),
    "attacks": (attacks_cases, "FGSM, PGD, PGD-L2 (start at x), CW on a small conv net"),
    "train": (train_cases, "LeNet-tanh, 20 SGD steps with momentum: loss sequence"),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden"))
    ap.add_argument("names", nargs="*", help=f"files to write (default all): {', '.join(FILES)}")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in FILES]
    if unknown:
        ap.error(f"unknown names {unknown}; known: {', '.join(FILES)}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.names or list(FILES):
        fn, about = FILES[name]
        doc = {
            "about": about,
            "generator": "tools/record_goldens.py",
            "command": "deno task goldens (this file alone: /usr/bin/python3 "
                       f"tools/record_goldens.py {name})",
            "torch": torch.__version__,
            "date": datetime.date.today().isoformat(),
            "seeds": "each input and parameter is {shape, seed, lo, hi}: the float32 values of "
                     "randomArray(n, seed, lo, hi) of tests/_util.ts",
            "cases": fn(),
        }
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(_dumps(doc) + "\n")
        print(f"{path}: {len(doc['cases'])} cases, {os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
