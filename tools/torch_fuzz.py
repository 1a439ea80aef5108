#!/usr/bin/python3
"""Oracle for the randomized parity test (tests/fuzz_torch_test.ts): PyTorch 1.13 on the CPU.

Reads one JSON object on stdin, {"models": [...], "ce": [...], "optim": [...], "train": [...],
"regtrain": [...], "attack": [...]}, and writes the results under the same keys, in the same order, on stdout. Tensors are flat
row-major lists; NaN and infinities are written as null. Models and cross-entropy run
in float64 (the float32 inputs are exact in float64), so the reference carries no float32
error of its own; the optimizers run in float32 like the GPU, with foreach=False (the
single-tensor path whose formulas src/train/optim.ts follows).

Model job:
  {input_shape, layers: [layer], params: {state_dict name: flat}, x, dy, tx, x2 | null}
  layer: {type: "normalize", mean, std} | {type: "conv2d", cin, cout, kernel, stride, padding,
         bias} | {type: "maxpool2d", kernel, stride, padding} | {type: "avgpool2d", kernel,
         stride, padding, count_include_pad} | {type: "relu" | "tanh" | "sigmoid" | "flatten"}
         | {type: "leaky_relu", slope} | {type: "softplus", beta, threshold}
         | {type: "dropout", p} | {type: "linear", cin, cout, bias}
         | {type: "batchnorm", dims, channels, eps, momentum, training}
         | {type: "basicblock", cin, cout, stride, training} (torchvision's BasicBlock)
  Layer i is module "i" of a torch.nn.Sequential, so parameter names are "i.weight", ...
  Dropout is always in eval mode; each BatchNorm and BasicBlock in the mode its "training" says.
  -> {y, y_shape, dx, grads: {name: flat}, buffers: {name: flat} (BatchNorm state after the
     forward), jvp: flat (batch-coupled through a training-mode BatchNorm), margin,
     eval: {y, jvp, margin} | null, noise, sums: {param name: Σ|terms| of its gradient}}
  "margin" is the smallest distance of the forward to a kink where float32 rounding could flip
  a derivative: min |a| at ReLU/LeakyReLU inputs, and the smallest gap between a max-pool
  window's maximum and its runner-up (exact ties, e.g. ReLU zeros, break the same way in both:
  first index), relative to the largest |value| at that layer. "eval" (when x2 is given):
  every layer switched to eval mode (BatchNorm now using the running statistics the first
  forward updated), y, jvp (tangent tx) and margin at x2.
  "noise" holds, per tensor above ({y, dx, grads: {name}, buffers: {name}, jvp, eval_y,
  eval_jvp}), the largest |float32 torch - float64 torch| over float32 runs at the job's values
  and at PERTURBED copies with every input and parameter entry moved by one unit in the 24th bit
  (low_runs): the float32 rounding error the case itself provokes (large where it is
  ill-conditioned or chaotic), which the test adds to its tolerance.
  "sums" holds, per Conv2d/Linear weight and bias and per normalization layer's weight and
  bias, the sum of |terms| its gradient adds up (its float32 rounding scales with it even where
  the gradient itself is 0, as for a bias before a training-mode BatchNorm, or a BatchNorm's
  shift before a LayerNorm over the rows).
  With "penalty": {lambda, nproj, v | null, labels, label_smoothing} in the job, the result's
  "penalty" holds the penalties on the function at x (penalty_pass below), each
  {value, per_sample, grads: {name: flat}, sums: {name: Σ|terms|}}, under "jacobian",
  "gradient_norm" and "determinant" (with "cond"), and their "noise" as above.
CE job: {shape: [B, K], logits, labels | soft, label_smoothing, reduction}
  -> {loss, per_sample, grad}
Optim job: {algorithm, options (torch names), shapes, init: [flat], grads: [[flat] per step],
  lrs} -> {trajectory: [[flat per param] after each step]}
Train job: a model job's {input_shape, layers, params, x} plus {labels, label_smoothing,
  algorithm, options, lr, steps}: `steps` times zero_grad, cross-entropy of the model's output,
  backward, optimizer step (model in float64 too, modes as for a model job)
  -> {losses, params: {name: flat}, buffers: {name: flat}, gmin: {name: flat} (the smallest
  |gradient| over the steps, per element), noise: {losses, params: {name}, buffers: {name}},
  sums: {name: the largest Σ|terms| of its gradient over the steps}}
  (noise as for a model job; for Adam and AdamW plus how far a run that zeroes the gradient
  entries float32 cannot resolve ends from this one, see run_train).
Regtrain job: a train job without label_smoothing, plus {train_mode, regs: [{name, options}]}
  (src/train/train.ts `train()` with `regularizers` from the registry names and options, every
  layer in training mode or every one in eval mode): the penalties (reg_penalty) join the loss,
  the projections (reg_project) follow each optimizer step, label-smoothing sets the loss's
  -> a train job's result plus {penalties: {name: [value per step]}, noise.penalties: {name}}.
Attack job: a model job's {input_shape, layers, params} plus {x (in [0, 1]), attack: "fgsm" |
  "pgd" | "pgdl2", eps, alpha, steps, mode: "labels" | "target" | "predictions", labels}, in
  eval mode (attack_pass) -> {adv, noise (per element |float32 - float64|), pred, pred_tie,
  fragile (per sample), tie (per element)}.

Usage: /usr/bin/python3 tools/torch_fuzz.py < jobs.json > results.json
(REGULA_FUZZ_DUMP=jobs.json makes tests/fuzz_torch_test.ts write its jobs there.)
"""

import copy
import json
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def flat(t):
    return [v if math.isfinite(v) else None for v in t.detach().reshape(-1).tolist()]


def f64(data):
    # JSON writes 80.0 as 80: without the dtype torch would make an integer tensor.
    return torch.tensor(data, dtype=torch.get_default_dtype())


def num(v):
    return v if math.isfinite(v) else None


class Normalize(torch.nn.Module):
    """torchvision's transforms.Normalize as a module without state."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, x):
        shape = [1, len(self.mean)] + [1] * (x.dim() - 2)
        mean = torch.tensor(self.mean, dtype=x.dtype).reshape(shape)
        std = torch.tensor(self.std, dtype=x.dtype).reshape(shape)
        return (x - mean) / std


class BasicBlock(torch.nn.Module):
    """torchvision.models.resnet.BasicBlock (expansion 1), with its module names."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                torch.nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def module(spec):
    m = plain_module(spec)
    if spec.get("weight_norm"):
        # Parameters weight_g (O, 1, ...) and weight_v; the weight is recomputed every forward.
        m = torch.nn.utils.weight_norm(m, name="weight", dim=0)
    return m


def plain_module(spec):
    t = spec["type"]
    if t == "basicblock":
        return BasicBlock(spec["cin"], spec["cout"], spec["stride"])
    if t == "normalize":
        return Normalize(spec["mean"], spec["std"])
    if t == "conv2d":
        return torch.nn.Conv2d(spec["cin"], spec["cout"], tuple(spec["kernel"]),
                               stride=tuple(spec["stride"]), padding=tuple(spec["padding"]),
                               bias=spec["bias"])
    if t == "maxpool2d":
        return torch.nn.MaxPool2d(tuple(spec["kernel"]), stride=tuple(spec["stride"]),
                                  padding=tuple(spec["padding"]))
    if t == "avgpool2d":
        return torch.nn.AvgPool2d(tuple(spec["kernel"]), stride=tuple(spec["stride"]),
                                  padding=tuple(spec["padding"]),
                                  count_include_pad=spec["count_include_pad"])
    if t == "relu":
        return torch.nn.ReLU()
    if t == "leaky_relu":
        return torch.nn.LeakyReLU(spec["slope"])
    if t == "tanh":
        return torch.nn.Tanh()
    if t == "sigmoid":
        return torch.nn.Sigmoid()
    if t == "softplus":
        return torch.nn.Softplus(beta=spec["beta"], threshold=spec["threshold"])
    if t == "flatten":
        return torch.nn.Flatten()
    if t == "dropout":
        return torch.nn.Dropout(spec["p"])
    if t == "linear":
        return torch.nn.Linear(spec["cin"], spec["cout"], bias=spec["bias"])
    if t == "layernorm":
        return torch.nn.LayerNorm(spec["shape"], eps=spec["eps"],
                                  elementwise_affine=spec["affine"])
    if t == "groupnorm":
        return torch.nn.GroupNorm(spec["groups"], spec["channels"], eps=spec["eps"],
                                  affine=spec["affine"])
    if t == "batchnorm":
        cls = torch.nn.BatchNorm1d if spec["dims"] == 1 else torch.nn.BatchNorm2d
        return cls(spec["channels"], eps=spec["eps"], momentum=spec["momentum"])
    raise ValueError(f"unknown layer type {t!r}")


def set_modes(model, layers, train_bn):
    for m, spec in zip(model, layers):
        stateful = spec["type"] in ("batchnorm", "basicblock")
        m.train(bool(train_bn and stateful and spec["training"]))


def margins(model, layers):
    """Forward hooks that record the kink margin of ReLU/LeakyReLU inputs and max-pool windows."""
    found = []

    def act_hook(_m, inputs, _out):
        a = inputs[0].detach()
        scale = max(a.abs().max().item(), 1e-30)
        found.append(a.abs().min().item() / scale)

    def pool_hook(m, inputs, _out):
        a = inputs[0].detach()
        scale = max(a.abs().max().item(), 1e-30)
        kh, kw = m.kernel_size
        sh, sw = m.stride
        ph, pw = m.padding
        padded = F.pad(a, (pw, pw, ph, ph), value=-math.inf)
        win = padded.unfold(2, kh, sh).unfold(3, kw, sw).reshape(*padded.shape[:2], -1, kh * kw)
        top = win.max(dim=-1, keepdim=True).values
        # Runner-up among the values that differ from the maximum (exact ties are harmless).
        rest = torch.where(win == top, torch.full_like(win, -math.inf), win).max(dim=-1).values
        gap = (top.squeeze(-1) - rest)
        found.append(gap.min().item() / scale)

    def softplus_hook(m, inputs, _out):
        # Softplus switches to the identity where beta a > threshold: a jump of its derivative
        # from sigmoid(threshold) to 1 (and of the second derivative to 0).
        a = inputs[0].detach() * m.beta
        scale = max(a.abs().max().item(), m.threshold, 1e-30)
        found.append((a - m.threshold).abs().min().item() / scale)

    handles = []
    for m, spec in zip(model, layers):
        if spec["type"] in ("relu", "leaky_relu"):
            handles.append(m.register_forward_hook(act_hook))
        elif spec["type"] == "softplus":
            handles.append(m.register_forward_hook(softplus_hook))
        elif spec["type"] == "basicblock":
            handles.append(m.relu.register_forward_hook(act_hook))
        elif spec["type"] == "maxpool2d":
            handles.append(m.register_forward_hook(pool_hook))
    return found, handles


def make_model(job):
    layers = job["layers"]
    model = torch.nn.Sequential(*[module(s) for s in layers])
    state = model.state_dict()
    with torch.no_grad():
        for name, value in job["params"].items():
            if name not in state:
                raise KeyError(f"no parameter {name!r} in {list(state)}")
            state[name].copy_(f64(value).reshape(state[name].shape))
    set_modes(model, layers, True)
    return model


def term_sums(model):
    """Forward hooks recording, per Conv2d/Linear weight and bias, the sum of |terms| that
    backward adds up into its gradient (Σ|dy|·max|x| and Σ|dy|): float32 rounding of such a
    sum scales with it even where the sum itself vanishes (a bias before a training-mode
    BatchNorm has gradient exactly 0)."""
    sums = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            def hook(mod, inputs, out, name=name):
                xmax = inputs[0].detach().abs().max().item()

                def on_grad(g):
                    total = g.detach().abs().sum().item()
                    put_max(sums, f"{name}.weight", total * xmax)
                    put_max(sums, f"{name}.bias", total)
                    if hasattr(mod, "weight_g"):
                        # dv = g/‖v‖ (dw - (dw·v̂) v̂), dg = dw·v̂: sums of the same terms, scaled.
                        v = mod.weight_v.detach().flatten(1)
                        ratio = (mod.weight_g.detach().flatten() / v.norm(dim=1)).max().item()
                        put_max(sums, f"{name}.weight_g", total * xmax)
                        put_max(sums, f"{name}.weight_v", 2 * ratio * total * xmax)

                if out.requires_grad:
                    out.register_hook(on_grad)

            handles.append(m.register_forward_hook(hook))
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_hook(
                lambda mod, inputs, out, name=name: bn_sums(sums, name, mod, inputs[0], out)))
        elif isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
            def norm_hook(mod, inputs, out, name=name):
                scale = norm_scale(mod, inputs[0])

                def on_grad(g):
                    total = g.detach().abs().sum().item()
                    put_max(sums, f"{name}.bias", total)
                    put_max(sums, f"{name}.weight", total * scale)

                if out.requires_grad:
                    out.register_hook(on_grad)

            handles.append(m.register_forward_hook(norm_hook))
    return sums, handles


NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)


def put_max(sums, key, value):
    """sums[key] = the largest value recorded (a training run passes every layer many times)."""
    sums[key] = max(sums.get(key, 0.0), value)


def group_scales(mod, x):
    """max|x| / sqrt(var + eps) per group a normalization layer normalizes (a BatchNorm's
    channels, a LayerNorm's rows, a GroupNorm's groups): how far a mean off by a few ulp of
    max|x| moves x̂, the factor of a weight gradient's sum of |terms|."""
    x = x.detach()
    if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
        dims = [0] + list(range(2, x.dim()))
        var = x.var(dim=dims, unbiased=False) if mod.training else mod.running_var.detach()
        return x.abs().amax(dim=dims) / (var + mod.eps).sqrt()
    if isinstance(mod, torch.nn.LayerNorm):
        rows = x.reshape(-1, math.prod(mod.normalized_shape))
    else:
        rows = x.reshape(x.shape[0] * mod.num_groups, -1)
    var = rows.var(dim=1, unbiased=False)
    return rows.abs().amax(dim=1) / (var + mod.eps).sqrt()


def norm_scale(mod, x):
    """The largest of group_scales: one factor for the whole weight."""
    return group_scales(mod, x).max().item()


def bn_sums(sums, name, bn, x, out):
    """BatchNorm's weight gradient is sum dy x̂ per channel, x̂ = (x - mean) / sqrt(var + eps):
    a float32 mean off by a few ulp of max|x| moves x̂ by that over sqrt(var + eps), which is
    large for a channel of (nearly) equal values (a conv seeing only padding), whose x̂ is 0
    exactly in float64. Records sum |dy| max|x| / sqrt(var + eps), the largest over the
    channels, as the sum of |terms| of that gradient."""
    dims = [0] + list(range(2, x.dim()))
    scale = group_scales(bn, x)

    def on_grad(g):
        put_max(sums, f"{name}.weight", (g.detach().abs().sum(dim=dims) * scale).max().item())
        # The bias gradient is sum dy per channel; 0 in exact arithmetic where a later
        # normalization removes a per-channel constant.
        put_max(sums, f"{name}.bias", g.detach().abs().sum(dim=dims).max().item())

    if out.requires_grad:
        out.register_hook(on_grad)


def model_pass(job):
    layers = job["layers"]
    model = make_model(job)
    shape = job["input_shape"]
    x = f64(job["x"]).reshape(shape).requires_grad_()
    found, handles = margins(model, layers)
    sums, more = term_sums(model)
    y = model(x)
    for h in handles + more:
        h.remove()
    y.backward(f64(job["dy"]).reshape(y.shape))
    out = {
        "sums": sums,
        "y": flat(y),
        "y_shape": list(y.shape),
        "dx": flat(x.grad),
        "grads": {n: flat(p.grad) for n, p in model.named_parameters()},
        "buffers": {n: flat(b.double()) for n, b in model.named_buffers()},
        "margin": num(min(found)) if found else None,
    }
    tx = f64(job["tx"]).reshape(shape)
    any_train = any(s["type"] in ("batchnorm", "basicblock") and s["training"] for s in layers)

    def jvp_at(point):
        _, ty = torch.autograd.functional.jvp(lambda v: model(v), point.detach(), tx)
        return flat(ty)

    if any_train:
        # The batch-coupled jvp through the batch statistics; its forward must not update the
        # running statistics a second time (the eval pass below reads them).
        saved = {n: b.clone() for n, b in model.named_buffers()}
        out["jvp"] = jvp_at(x)
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(saved[n])
    else:
        out["jvp"] = jvp_at(x)
    out["eval"] = None
    if job.get("x2") is not None:
        set_modes(model, layers, False)
        x2 = f64(job["x2"]).reshape(shape)
        found, handles = margins(model, layers)
        with torch.no_grad():
            y2 = model(x2)
        for h in handles:
            h.remove()
        margin = num(min(found)) if found else None
        out["eval"] = {"y": flat(y2), "jvp": jvp_at(x2), "margin": margin}
    return out


def penalty_pass(job):
    """The penalties on the function of src/regularizers (jacobian.ts, gradient_norm.ts,
    determinant.ts; formulas as tools/torch_jacobian.py states them) on the model of a job, in
    the modes of its first pass: value, per-sample values and every parameter gradient by double
    backprop. Through a training-mode BatchNorm the batch statistics couple the samples: the
    input gradients are then those of the whole batch, as plain autograd gives them."""
    pen = job["penalty"]
    model = make_model(job)
    shape = job["input_shape"]
    x = f64(job["x"]).reshape(shape).requires_grad_()
    # The outputs of the Conv2d/Linear layers (with their largest |input|) and of the
    # normalization layers (with norm_scale), for "sums" below.
    outs = []
    def factor(mod, x):
        return norm_scale(mod, x) if isinstance(mod, NORMS) else x.detach().abs().max().item()

    handles = [
        m.register_forward_hook(lambda mod, i, o, name=name: outs.append(
            (name, factor(mod, i[0]), o)))
        for name, m in model.named_modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear) + NORMS)
    ]
    logits = model(x)
    for h in handles:
        h.remove()
    b, c = logits.shape
    lam = pen["lambda"]
    params = list(model.named_parameters())
    out = {}

    def finish(key, r, value):
        if value.requires_grad:
            gs = torch.autograd.grad(value, [p for _, p in params] + [o for _, _, o in outs],
                                     retain_graph=True, allow_unused=True)
        else:
            gs = [None] * (len(params) + len(outs))
        # As for a model job: per Conv2d/Linear weight and bias, the sum of |terms| its gradient
        # adds up, here from the penalty's whole gradient at the layer's output.
        sums = {}
        for (name, xmax, _), g in zip(outs, gs[len(params):]):
            total = 0.0 if g is None else g.abs().sum().item()
            sums[f"{name}.bias"] = num(total)
            for w in ("weight", "weight_g", "weight_v"):
                sums[f"{name}.{w}"] = num(total * xmax)
        out[key] = {
            "value": num(value.item()),
            "per_sample": flat(r),
            "grads": {n: flat(g if g is not None else torch.zeros_like(p))
                      for (n, p), g in zip(params, gs)},
            "sums": sums,
        }

    def input_grad(y, weights):
        (u,) = torch.autograd.grad(y, x, grad_outputs=weights, create_graph=True)
        return u.reshape(b, -1)

    # Jacobian (Hoffman et al. 2019): R_b = C / nproj sum_mu ||v_mu,b^T J_b||^2, lambda/2 mean R.
    if pen["nproj"] == -1:
        vs = torch.eye(c, dtype=logits.dtype).unsqueeze(1).expand(c, b, c)
    else:
        vs = f64(pen["v"]).reshape(pen["nproj"], b, c)
    r = torch.zeros(b, dtype=logits.dtype)
    for mu in range(vs.shape[0]):
        r = r + input_grad(logits, vs[mu]).pow(2).sum(1)
    r = r * (c / vs.shape[0])
    finish("jacobian", r, lam / 2 * r.mean())

    # Input-gradient norm (Drucker & LeCun 1992): R_b = ||d CE_b / d x_b||^2, lambda mean R.
    labels = torch.tensor(pen["labels"], dtype=torch.int64)
    ce = F.cross_entropy(logits, labels, reduction="sum", label_smoothing=pen["label_smoothing"])
    (g,) = torch.autograd.grad(ce, x, create_graph=True)
    r = g.reshape(b, -1).pow(2).sum(1)
    finish("gradient_norm", r, lam * r.mean())

    # Determinant: R_b = (det J_b - 1)^2 for a square J, else (sqrt(det G_b) - 1)^2 with G_b the
    # smaller Gram matrix; lambda mean R. "cond", the largest over the batch of
    # max(sigma_max, 1) / sigma_min of J_b, says how far from singular J is: the gradient
    # 2 (vol - 1) vol G^-1 J is 0 * inf at a singular J (undefined for C = 1 at J = 0), and
    # float32 rounding of G^-1 grows like 1 / sigma_min^2.
    rows = []
    for i in range(c):
        e = torch.zeros_like(logits)
        e[:, i] = 1
        rows.append(input_grad(logits, e))
    j = torch.stack(rows, 1)  # (B, C, D)
    d = j.shape[2]
    if c == d:
        r = (torch.linalg.det(j) - 1) ** 2
    else:
        gram = j @ j.transpose(1, 2) if c < d else j.transpose(1, 2) @ j
        r = (torch.sqrt(torch.linalg.det(gram)) - 1) ** 2
    finish("determinant", r, lam * r.mean())
    sv = torch.linalg.svdvals(j.detach())
    cond = (sv[:, 0].clamp(min=1) / sv[:, -1]).max().item()
    out["determinant"]["cond"] = num(cond)
    return out


def diff(a, b):
    """Largest |a - b| over the entries finite in both (0 for missing tensors)."""
    if a is None or b is None:
        return 0.0
    return max((abs(u - v) for u, v in zip(a, b) if u is not None and v is not None),
               default=0.0)


# Float32 runs besides the one at the job's exact values: each with every input and parameter
# entry moved by one unit in the 24th bit (x (1 ± 2^-24), signs from a seeded generator). Where a
# case is chaotic in float32 (Adam's normalized steps on a gradient float32 cannot resolve, PGD's
# iterated sign or normalization through a BatchNorm over 2 samples, a branch that rounding can
# flip), one float32 run may land next to float64 by luck while a neighbour lands far away: the
# noise is the largest distance over all runs, the spread of float32 itself on that case.
PERTURBED = int(os.environ.get("REGULA_FUZZ_PERTURBED", "8"))


def perturbed(job, seed):
    """The job with x and every parameter entry scaled by 1 ± 2^-24 (seeded signs)."""
    r = random.Random(seed)
    u = 2.0 ** -24
    out = copy.copy(job)
    out["x"] = [v * (1 + u * r.choice((-1.0, 1.0))) for v in job["x"]]
    out["params"] = {
        k: [v * (1 + u * r.choice((-1.0, 1.0))) for v in vs] for k, vs in job["params"].items()
    }
    return out


def low_runs(fn, job):
    """fn in float32 at the job's exact values, then at PERTURBED perturbed copies."""
    torch.set_default_dtype(torch.float32)
    try:
        return [fn(job)] + [fn(perturbed(job, s + 1)) for s in range(PERTURBED)]
    finally:
        torch.set_default_dtype(torch.float64)


def worst(out, lows, pick):
    """The largest diff between pick(out) and pick(low) over the float32 runs."""
    return max(diff(pick(out), pick(low)) for low in lows)


def penalty_noise(out, lows):
    """The noise of each penalty in out (penalty_pass) over the float32 runs lows."""
    return {key: {
        "value": worst(out, lows, lambda r: [r[key]["value"]]),
        "per_sample": worst(out, lows, lambda r: r[key]["per_sample"]),
        "grads": {n: worst(out, lows, lambda r: r[key]["grads"][n]) for n in out[key]["grads"]},
    } for key in out if isinstance(out[key], dict)}


def run_model(job):
    out = model_pass(job)
    pen = penalty_pass(job) if job.get("penalty") else None
    lows = low_runs(model_pass, job)
    out["penalty"] = pen
    if pen:
        pen["noise"] = penalty_noise(pen, low_runs(penalty_pass, job))

    def ev(r, k):
        return r["eval"] and r["eval"][k]

    out["noise"] = {
        "y": worst(out, lows, lambda r: r["y"]),
        "dx": worst(out, lows, lambda r: r["dx"]),
        "grads": {n: worst(out, lows, lambda r: r["grads"][n]) for n in out["grads"]},
        "buffers": {n: worst(out, lows, lambda r: r["buffers"][n]) for n in out["buffers"]},
        "jvp": worst(out, lows, lambda r: r["jvp"]),
        "eval_y": worst(out, lows, lambda r: ev(r, "y")),
        "eval_jvp": worst(out, lows, lambda r: ev(r, "jvp")),
    }
    return out


def run_ce(job):
    b, k = job["shape"]
    z = f64(job["logits"]).reshape(b, k).requires_grad_()
    if job.get("soft") is not None:
        target = f64(job["soft"]).reshape(b, k)
    else:
        target = torch.tensor(job["labels"], dtype=torch.int64)
    eps = job.get("label_smoothing", 0.0)
    per = F.cross_entropy(z, target, label_smoothing=eps, reduction="none")
    loss = per.mean() if job["reduction"] == "mean" else per.sum()
    loss.backward()
    return {"loss": num(loss.item()), "per_sample": flat(per), "grad": flat(z.grad)}


def make_optimizer(params, algorithm, options, lr):
    if algorithm == "sgd":
        return torch.optim.SGD(params, lr=lr, foreach=False, **options)
    if algorithm in ("adam", "adamw"):
        cls = torch.optim.Adam if algorithm == "adam" else torch.optim.AdamW
        kw = dict(options)
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(params, lr=lr, foreach=False, **kw)
    raise ValueError(f"unknown algorithm {algorithm!r}")


def run_optim(job):
    params = [
        torch.tensor(d, dtype=torch.float32).reshape(s).requires_grad_()
        for d, s in zip(job["init"], job["shapes"])
    ]
    opt = make_optimizer(params, job["algorithm"], job["options"], job["lrs"][0])
    trajectory = []
    for step, grads in enumerate(job["grads"]):
        for g in opt.param_groups:
            g["lr"] = job["lrs"][step]
        for p, g, s in zip(params, grads, job["shapes"]):
            p.grad = torch.tensor(g, dtype=torch.float32).reshape(s)
        opt.step()
        trajectory.append([flat(p) for p in params])
    return {"trajectory": trajectory}


def selected(model, opts, matrices_only=False):
    """src/regularizers/_params.ts selectParams in torch names: the weights of Conv2d and Linear
    layers (weight_v under weight normalization); with "biases" every bias (Conv2d, Linear and
    the normalizations' beta); with "norms" the normalizations' gamma and weight normalization's
    g. matrices_only: the weights alone, whatever opts say."""
    out = []
    norms = not matrices_only and opts.get("norms", False)
    biases = not matrices_only and opts.get("biases", False)
    for mname, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                keep = (pname in ("weight", "weight_v") or (pname == "weight_g" and norms)
                        or (pname == "bias" and biases))
            else:
                keep = (pname == "weight" and norms) or (pname == "bias" and biases)
            if keep:
                out.append(p)
    return out


def small_gram(w):
    """The smaller Gram matrix of a weight read as (out, rest)."""
    wm = w.reshape(w.shape[0], -1)
    return wm @ wm.T if wm.shape[0] <= wm.shape[1] else wm.T @ wm


def reg_penalty(reg, model, x, logits, labels):
    """The penalty a regularizer adds to the loss (src/regularizers: penalties.ts, confidence.ts,
    jacobian.ts, gradient_norm.ts), None for those without one."""
    name, o = reg["name"], reg["options"]
    if name in ("l1", "l2", "elastic-net"):
        ps = selected(model, o)
        l1 = o["lambda"] if name == "l1" else o.get("l1", 0.0) if name == "elastic-net" else 0.0
        l2 = o["lambda"] if name == "l2" else o.get("l2", 0.0) if name == "elastic-net" else 0.0
        return sum((l1 * p.abs().sum() + l2 / 2 * (p * p).sum() for p in ps), logits.new_zeros(()))
    if name == "soft-svb":
        total = logits.new_zeros(())
        for p in selected(model, {}, True):
            g = small_gram(p)
            total = total + ((g - torch.eye(g.shape[0], dtype=g.dtype)) ** 2).sum()
        return o["lambda"] * total
    if name == "confidence":
        # Pereyra et al. 2017: -beta H(p), or beta max(0, hinge - H); batch mean.
        logp = F.log_softmax(logits, 1)
        h = -(logp.exp() * logp).sum(1)
        r = -o["beta"] * h if "hinge" not in o else o["beta"] * (o["hinge"] - h).clamp(min=0)
        return r.mean()
    if name == "jacobian":
        # Exact (nproj -1): (lambda/2) mean_b ||J_b||_F^2, one backward per class.
        b, c = logits.shape
        r = logits.new_zeros(b)
        for i in range(c):
            e = torch.zeros_like(logits)
            e[:, i] = 1
            (u,) = torch.autograd.grad(logits, x, grad_outputs=e, create_graph=True)
            r = r + u.reshape(b, -1).pow(2).sum(1)
        return o["lambda"] / 2 * r.mean()
    if name == "gradient-norm":
        ce = F.cross_entropy(logits, labels, reduction="sum",
                             label_smoothing=o["labelSmoothing"])
        (g,) = torch.autograd.grad(ce, x, create_graph=True)
        return o["lambda"] * g.reshape(g.shape[0], -1).pow(2).sum(1).mean()
    return None


@torch.no_grad()
def reg_project(reg, model, step):
    """The projections of src/regularizers/projections.ts, after optimizer step `step` (from 0)."""
    name, o = reg["name"], reg["options"]
    if name == "hard-svb" and (step + 1) % o["every"] == 0:
        # Jia et al. 2017: W <- U clip(S, 1/(1+eps), 1+eps) V^T, conv weights as (out, rest).
        for p in selected(model, {}, True):
            wm = p.reshape(p.shape[0], -1)
            u, sv, vh = torch.linalg.svd(wm, full_matrices=False)
            sv = sv.clamp(1 / (1 + o["eps"]), 1 + o["eps"])
            p.copy_(((u * sv) @ vh).reshape(p.shape))
    elif name == "max-norm":
        # Srivastava et al. 2014; torch.renorm's scale c / (norm + 1e-7) for rows above c.
        for p in selected(model, {}, True):
            wm = p.reshape(p.shape[0], -1)
            p.copy_(torch.renorm(wm, 2, 0, o["c"]).reshape(p.shape))


def train_pass(job, drop_unresolved=False):
    """One training run; with drop_unresolved, each gradient entry below float32 resolution
    (|g| < 1e-6 max|g| of its tensor, or 1e-12) is zeroed before the step. With "regs" (a
    regularized job) every layer is put in the mode "train_mode" says, the penalties join the
    loss and the projections follow the step, in list order, as src/train/train.ts runs them."""
    model = make_model(job)
    regs = job.get("regs") or []
    if "train_mode" in job:
        set_modes(model, job["layers"], job["train_mode"])
    x = f64(job["x"]).reshape(job["input_shape"])
    labels = torch.tensor(job["labels"], dtype=torch.int64)
    opt = make_optimizer(list(model.parameters()), job["algorithm"], job["options"], job["lr"])
    smoothing = job.get("label_smoothing", 0.0)
    for r in regs:
        if r["name"] == "label-smoothing":
            smoothing = r["options"]["eps"]
    losses = []
    penalties = {r["name"]: [] for r in regs}
    gmin = {n: torch.full_like(p, math.inf) for n, p in model.named_parameters()}
    # Per weight and bias, the largest sum of |terms| of its gradient over the steps.
    sums, handles = term_sums(model)
    for step in range(job["steps"]):
        opt.zero_grad()
        xin = x.clone().requires_grad_(bool(regs))
        logits = model(xin)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        total = loss
        for r in regs:
            v = reg_penalty(r, model, xin, logits, labels)
            penalties[r["name"]].append(0.0 if v is None else num(v.item()))
            if v is not None:
                total = total + v
        total.backward()
        for n, p in model.named_parameters():
            gmin[n] = torch.minimum(gmin[n], p.grad.abs())
            if drop_unresolved:
                tiny = max(1e-6 * p.grad.abs().max().item(), 1e-12)
                p.grad[p.grad.abs() < tiny] = 0
        opt.step()
        for r in regs:
            reg_project(r, model, step)
        losses.append(num(loss.item()))
    for h in handles:
        h.remove()
    return {
        "sums": {n: num(v) for n, v in sums.items()},
        "losses": losses,
        "penalties": penalties,
        "gmin": {n: flat(g) for n, g in gmin.items()},
        "params": {n: flat(p) for n, p in model.named_parameters()},
        "buffers": {n: flat(b.double()) for n, b in model.named_buffers()},
    }


def run_train(job):
    out = train_pass(job)
    lows = low_runs(train_pass, job)
    out["noise"] = {
        "losses": worst(out, lows, lambda r: r["losses"]),
        "penalties": {n: worst(out, lows, lambda r: r["penalties"][n]) for n in out["penalties"]},
        "params": {n: worst(out, lows, lambda r: r["params"][n]) for n in out["params"]},
        "buffers": {n: worst(out, lows, lambda r: r["buffers"][n]) for n in out["buffers"]},
    }
    if job["algorithm"] != "sgd":
        # Adam normalizes each entry's gradient: an entry whose gradient float32 cannot resolve
        # (|g| ~ 1e-9 where the row's terms are ~0.1, as a weight_v entry nearly orthogonal to
        # the projection) steps by up to lr on rounding noise, and every later step of every
        # tensor follows from there (a max-pool may even switch its pick). The run again with
        # those entries' gradients zeroed measures how much that moves the results; it is added
        # to the noise.
        alt = train_pass(job, drop_unresolved=True)
        noise = out["noise"]
        noise["losses"] += diff(out["losses"], alt["losses"])
        for n, v in out["penalties"].items():
            noise["penalties"][n] += diff(v, alt["penalties"][n])
        for kind in ("params", "buffers"):
            for n, g in out[kind].items():
                noise[kind][n] += diff(g, alt[kind][n])
    return out


def attack_pass(job):
    """One attack in the default dtype, the model in eval mode (src/attacks: fgsm.ts, pgd.ts;
    torchattacks' FGSM/PGD/PGDL2 without the random start): mean cross-entropy; L-inf step
    x0 + clamp(x + alpha sign(g) - x0, -eps, eps), L2 step x + alpha g / max(||g||, 1e-12) then
    delta min(1, eps / ||delta||), each clamped to [0, 1]; targeted descends CE(target).
    Also records where float32 may legitimately decide otherwise (see run_attack)."""
    layers = job["layers"]
    model = make_model(job)
    set_modes(model, layers, False)
    x0 = f64(job["x"]).reshape(job["input_shape"])
    b = x0.shape[0]
    # The same model in float32, for the rounding error of logits and gradients.
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        low = make_model(job)
        set_modes(low, layers, False)
    finally:
        torch.set_default_dtype(dtype)

    def near_tie(point):
        """The logits at point, and per sample whether float32 may rank its top two otherwise:
        their gap is within 1e-4 of the largest |logit| or 10x float32's own error (logits
        that are constant in exact arithmetic, as after a LayerNorm over one value into a
        Linear without bias, are all 0 up to rounding)."""
        with torch.no_grad():
            z = model(point)
            err = (low(point.float()).to(z.dtype) - z).abs().max(dim=1).values
        if z.shape[1] < 2:
            return z, torch.zeros(b, dtype=torch.bool)
        top = z.topk(2, 1).values
        gap = top[:, 0] - top[:, 1]
        return z, (gap <= 1e-4 * top.abs().max(dim=1).values) | (gap <= 10 * err)

    z, clean_tie = near_tie(x0)
    fragile = torch.zeros(b, dtype=torch.bool)
    if job["mode"] == "predictions":
        labels = z.argmax(1)
        fragile |= clean_tie
    else:
        labels = torch.tensor(job["labels"], dtype=torch.int64)
    sign = -1.0 if job["mode"] == "target" else 1.0
    eps, alpha = job["eps"], job["alpha"]
    steps = job["steps"] if eps > 0 else 0
    adv = x0.clone()
    tie = torch.zeros_like(x0, dtype=torch.bool)
    for i in range(steps):
        a = adv.clone().requires_grad_()
        found, handles = margins(model, layers)
        loss = F.cross_entropy(model(a), labels)
        for h in handles:
            h.remove()
        (g,) = torch.autograd.grad(loss, a)
        a32 = adv.float().requires_grad_()
        (g32,) = torch.autograd.grad(F.cross_entropy(low(a32), labels), a32)
        err = (g32.to(g.dtype) - g).abs()
        if found and min(found) < 1e-5:
            fragile[:] = True
        if job["attack"] == "pgdl2":
            shape = [b] + [1] * (x0.dim() - 1)
            gn = g.reshape(b, -1).norm(dim=1).clamp(min=1e-12).reshape(shape)
            delta = adv + sign * alpha * g / gn - x0
            dn = delta.reshape(b, -1).norm(dim=1).reshape(shape)
            factor = torch.where(dn > eps, eps / dn, torch.ones_like(dn))
            adv = (x0 + delta * factor).clamp(0, 1)
        else:
            # An entry may have either sign (or be 0) in float32 when it is within 10x float32's
            # own error of 0, or, nonzero, this small against its sample's largest. Both catch
            # gradients that vanish in exact arithmetic but not in rounding (a LayerNorm over
            # one value: its output is constant, float64 leaves ~1e-17, float32 0 or ~1e-9);
            # exact zeros of both (pixels no output sees) stay 0: sign(0) = 0.
            scale = g.reshape(b, -1).abs().max(dim=1).values.reshape([b] + [1] * (x0.dim() - 1))
            near = ((g != 0) & (g.abs() <= 1e-4 * scale)) | (g.abs() <= 10 * err) & (err > 0)
            if i < steps - 1:
                fragile |= near.reshape(b, -1).any(dim=1)
            else:
                tie = near
            step = adv + sign * alpha * torch.sign(g)
            adv = (x0 + (step - x0).clamp(-eps, eps)).clamp(0, 1)
    za, adv_tie = near_tie(adv)
    return {
        "adv": flat(adv),
        "pred": za.argmax(1).tolist(),
        "pred_tie": adv_tie.tolist(),
        "fragile": fragile.tolist(),
        "tie": tie.reshape(-1).tolist(),
    }


def run_attack(job):
    """The attack in float64, and in float32 (low_runs) for the per-element noise; a sample is
    fragile when any run found it so."""
    out = attack_pass(job)
    lows = low_runs(attack_pass, job)
    out["noise"] = [max(abs(u - low["adv"][i]) for low in lows) for i, u in enumerate(out["adv"])]
    for key in ("fragile", "tie", "pred_tie"):
        out[key] = [a or any(low[key][i] for low in lows) for i, a in enumerate(out[key])]
    return out


def main():
    jobs = json.load(sys.stdin)
    torch.set_num_threads(1)
    json.dump({
        "models": [run_model(j) for j in jobs.get("models", [])],
        "ce": [run_ce(j) for j in jobs.get("ce", [])],
        "optim": [run_optim(j) for j in jobs.get("optim", [])],
        "train": [run_train(j) for j in jobs.get("train", [])],
        "regtrain": [run_train(j) for j in jobs.get("regtrain", [])],
        "attack": [run_attack(j) for j in jobs.get("attack", [])],
    }, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
