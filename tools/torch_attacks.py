#!/usr/bin/python3
"""torch_attacks: PyTorch references of regula's attacks, for parity tests.

Run with Debian's PyTorch (``/usr/bin/python3``)::

    /usr/bin/python3 tools/torch_attacks.py IN.safetensors OUT.safetensors --spec-json '{...}'

The model is built and loaded by tools/torch_bridge.py's ``_build`` (same JSON
model description and state_dict names); the input file holds ``x`` (B, ...)
in [0, 1], ``y`` (B,) integer labels (targets when ``targeted``) and the
state_dict entries. The output file holds ``adv``, the adversarial examples,
``logits`` at the clean input and, for APGD, ``ties`` (B,) int32: per sample, how
many of its float32 decisions were near-ties (``_apgd``), where another float32
implementation may legitimately take the other branch. ``--spec-json`` may also be a list of specs
sharing the model: outputs are then ``adv.<i>`` and ``logits.<i>``, and the
labels of spec i are ``y.<i>`` when that input exists (else ``y``); one process
(PyTorch loads once).

Spec (JSON object)::

    model      {"layers": [...]}   as in torch_bridge.py
    dtype      "float32" (default) | "float64"
    attack     "fgsm" | "pgd" | "pgdl2" | "cw" | "apgd"
    eps        radius (L-inf for fgsm/pgd, L2 for pgdl2)
    alpha      step size (pgd, pgdl2)
    steps      iterations (pgd, pgdl2)
    targeted   false (default): ascend CE(y); true: descend CE(y)
    loss, rho  apgd: "ce" | "dlr", rho (default 0.75); starts at x (no random start)
    c, kappa, lr   cw: trade-off constant, confidence, Adam learning rate (one value of c:
               no binary search, as torchattacks' CW)

The algorithms follow torchattacks 3.x (Kim 2020; torchattacks/attacks/
fgsm.py, pgd.py, pgdl2.py) without the random start: mean cross-entropy,
L-inf step ``adv + alpha * sign(g)`` then ``x + clamp(adv - x, -eps, eps)``
clamped to [0, 1]; L2 step ``adv + alpha * g / max(||g||, 1e-12)`` (regula's
floor; torchattacks adds 1e-10), projection ``delta * min(1, eps / ||delta||)``,
clamp to [0, 1]. CW (Carlini & Wagner 2017; torchattacks/attacks/cw.py):
``w0 = atanh((2x - 1)(1 - 1e-6))`` (regula's; torchattacks has no shrink),
``x' = (tanh w + 1) / 2``, loss ``sum ||x' - x||^2 + c sum f(x')`` with
``f = max(z_y - max(z - 1e4 onehot), -kappa)`` (targeted: the negated margin),
``torch.optim.Adam``; keeps per sample the successful x' of smallest L2 (the
clean x when none). APGD (Croce & Hein 2020; autoattack/autopgd_base.py,
L-inf): step size 2 eps, momentum 0.75 after the first step, checkpoints
k0 = max(int(0.22 N), 1), k <- max(k - max(int(0.03 N), 1), max(int(0.06 N), 1)),
halving and restart from the best point when the loss rose in <= rho k of the
iterations since the last checkpoint (regula's window; autopgd_base.py's is
shifted by one) or when the step was not halved last time and the best loss did
not improve; returns per sample the latest successful point, else the best-loss
point. The model is in eval mode.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bridge as tb  # noqa: E402


def _cost(model, adv, y, targeted):
    F = tb.F
    loss = F.cross_entropy(model(adv), y)
    return -loss if targeted else loss


def _grad(model, adv, y, targeted):
    torch = tb.torch
    adv = adv.clone().detach().requires_grad_(True)
    cost = _cost(model, adv, y, targeted)
    return torch.autograd.grad(cost, [adv])[0]


def fgsm(model, x, y, eps, targeted=False):
    """FGSM (torchattacks' FGSM): ``clamp(x + eps sign(grad CE), 0, 1)``; targeted descends."""
    g = _grad(model, x, y, targeted)
    return tb.torch.clamp(x + eps * g.sign(), 0, 1)


def pgd(model, x, y, eps, alpha, steps, targeted=False):
    """L-inf PGD from x (torchattacks' PGD without the random start); also used by
    torch_bridge.py's ``train_sgd`` for adversarial training."""
    torch = tb.torch
    adv = x.clone()
    for _ in range(steps):
        g = _grad(model, adv, y, targeted)
        adv = adv + alpha * g.sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        adv = torch.clamp(x + delta, 0, 1)
    return adv


def _cw(model, x, y, targeted, c, kappa, steps, lr):
    torch = tb.torch
    b = x.shape[0]
    y2 = (2 * x - 1) * (1 - 1e-6)
    w = (0.5 * torch.log((1 + y2) / (1 - y2))).detach().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    best = x.clone().detach()
    best_l2 = torch.full((b,), 3.4e38, dtype=x.dtype)

    def evaluate():
        xp = (torch.tanh(w) + 1) / 2
        z = model(xp)
        oh = torch.nn.functional.one_hot(y, z.shape[1]).to(z.dtype)
        real = (z * oh).sum(1)
        other = (z - 1e4 * oh).max(1)[0]
        margin = other - real if targeted else real - other
        f = torch.clamp(margin, min=-kappa)
        l2 = ((xp - x) ** 2).reshape(b, -1).sum(1)
        pred = z.argmax(1)
        hit = pred == y if targeted else pred != y
        return xp, l2, f, hit

    for _ in range(steps):
        xp, l2, f, hit = evaluate()
        with torch.no_grad():
            better = hit & (l2 < best_l2)
            best[better] = xp[better].detach()
            best_l2[better] = l2[better].detach()
        cost = l2.sum() + c * f.sum()
        opt.zero_grad()
        cost.backward()
        opt.step()
    with torch.no_grad():
        xp, l2, f, hit = evaluate()
        better = hit & (l2 < best_l2)
        best[better] = xp[better]
    return best


# A float32 decision of APGD is a near-tie when the two values it compares lie within
# TIE_ULPS ulps of the logits' scale, 2^-23 (1 + max|z|) (a cross-entropy or DLR loss inherits the
# rounding of the logits it is computed from): another float32 implementation of the same model
# (regula, or PyTorch with another batch size) may decide it the other way.
TIE_ULPS = 8


def _apgd(model, x, y, targeted, eps, n, loss_name, rho):
    """APGD (see the module doc). Returns the adversarial examples and, per sample, the number
    of its decisions that were near-ties (see TIE_ULPS): "the loss went up" (li > loss_prev),
    "the loss improved" (li > loss_best) and "the attack succeeds" (the margin of the argmax
    against the label), each only where the two points compared differ (the same float32
    point gives the same loss in any deterministic implementation). The checkpoint decisions
    only combine these."""
    torch = tb.torch
    F = tb.F
    b = x.shape[0]
    view = [b] + [1] * (x.dim() - 1)
    flat = [b, -1]

    def loss_fn(z):
        if loss_name == "ce":
            ce = F.cross_entropy(z, y, reduction="none")
            return -ce if targeted else ce
        zs, ind = z.sort(dim=1)
        top_is_y = (ind[:, -1] == y).to(z.dtype)
        zy = z[torch.arange(b), y]
        return -(zy - zs[:, -2] * top_is_y - zs[:, -1] * (1 - top_is_y)) / (
            zs[:, -1] - zs[:, -3] + 1e-12)

    def at(xa):
        xa = xa.clone().detach().requires_grad_(True)
        z = model(xa)
        li = loss_fn(z)
        g = torch.autograd.grad(li.sum(), [xa])[0]
        pred = z.argmax(1)
        hit = pred == y if targeted else pred != y
        z = z.detach()
        tol = TIE_ULPS * 2.0 ** -23 * (1 + z.abs().amax(1))
        zy = z[torch.arange(b), y]
        other = z.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
        hit_tie = (zy - other).abs() <= tol
        return li.detach(), g.detach(), hit, tol, hit_tie

    def tie(a, b_, tol_a, tol_b, xa_, xb_):
        moved = (xa_ != xb_).reshape(flat).any(1)
        return moved & ((a - b_).abs() <= torch.maximum(tol_a, tol_b))

    checks, k, count = {}, max(int(0.22 * n), 1), 0
    for i in range(n):
        count += 1
        if count == k:
            checks[i] = k
            count = 0
            k = max(k - max(int(0.03 * n), 1), max(int(0.06 * n), 1))
    xa = x.clone()
    li, g, hit, tol, ties = at(xa)
    ties = ties.to(torch.int64)
    x_best, g_best, loss_best, tol_best = xa.clone(), g.clone(), li.clone(), tol.clone()
    x_hit, fooled = xa.clone(), hit.clone()
    loss_prev, incr = li.clone(), torch.zeros(b, dtype=x.dtype)
    x_prev, tol_prev = xa.clone(), tol.clone()
    eta = torch.full((b,), 2 * eps, dtype=x.dtype)
    reduced, last = torch.ones(b, dtype=torch.bool), loss_best.clone()
    x_old = xa.clone()
    lo, hi = x - eps, x + eps
    for i in range(n):
        a = 0.75 if i > 0 else 1.0
        z = torch.clamp(torch.min(torch.max(xa + eta.view(view) * g.sign(), lo), hi), 0, 1)
        xn = torch.clamp(torch.min(torch.max(xa + (z - xa) * a + (xa - x_old) * (1 - a), lo),
                                   hi), 0, 1)
        x_old, xa = xa, xn
        li, g, hit, tol, hit_tie = at(xa)
        ties += hit_tie
        ties += tie(li, loss_prev, tol, tol_prev, xa, x_prev)
        ties += tie(li, loss_best, tol, tol_best, xa, x_best)
        x_hit[hit] = xa[hit]
        fooled |= hit
        incr += (li > loss_prev).to(x.dtype)
        loss_prev, x_prev, tol_prev = li.clone(), xa.clone(), tol.clone()
        imp = li > loss_best
        x_best[imp], g_best[imp], loss_best[imp], tol_best[imp] = xa[imp], g[imp], li[imp], tol[imp]
        if i in checks:
            fl = (incr <= rho * checks[i]) | (~reduced & (last >= loss_best))
            reduced, last = fl.clone(), loss_best.clone()
            incr.zero_()
            eta[fl] /= 2
            xa[fl], g[fl] = x_best[fl], g_best[fl]
    return torch.where(fooled.view(view), x_hit, x_best), ties


def run(spec, inputs):
    torch = tb.torch
    if torch is None:
        raise tb.BridgeError("/usr/bin/python3 cannot import torch")
    spec = dict(spec)
    spec.setdefault("dtype", "float32")
    used = {"x", "y"}
    model, _ = tb._build(spec, inputs, used)
    model.eval()
    fdt = tb._float_dtype(spec)
    x = tb._to_torch(inputs["x"], fdt)
    y = tb._labels(inputs["y"])
    unused = sorted(set(inputs) - used)
    if unused:
        raise tb.BridgeError(f"unused input tensors {unused}")
    attack = spec.get("attack")
    eps = float(spec.get("eps", 0))
    targeted = bool(spec.get("targeted", False))
    b = x.shape[0]
    if attack == "fgsm":
        adv = fgsm(model, x, y, eps, targeted)
    elif attack == "pgd":
        adv = pgd(model, x, y, eps, float(spec["alpha"]), int(spec["steps"]), targeted)
    elif attack == "pgdl2":
        alpha, steps = float(spec["alpha"]), int(spec["steps"])
        adv = x.clone()
        view = [b] + [1] * (x.dim() - 1)
        for _ in range(steps):
            g = _grad(model, adv, y, targeted)
            gn = torch.clamp(g.reshape(b, -1).norm(p=2, dim=1), min=1e-12).view(view)
            adv = adv + alpha * g / gn
            delta = adv - x
            dn = delta.reshape(b, -1).norm(p=2, dim=1)
            factor = torch.where(dn > eps, eps / dn, torch.ones_like(dn)).view(view)
            adv = torch.clamp(x + delta * factor, 0, 1)
    elif attack == "apgd":
        adv, ties = _apgd(model, x, y, targeted, eps, int(spec["steps"]), spec.get("loss", "ce"),
                          float(spec.get("rho", 0.75)))
    elif attack == "cw":
        adv = _cw(model, x, y, targeted, float(spec["c"]), float(spec.get("kappa", 0)),
                  int(spec["steps"]), float(spec.get("lr", 0.01)))
    else:
        raise tb.BridgeError(f'attack must be "fgsm", "pgd", "pgdl2" or "cw", got {attack!r}')
    with torch.no_grad():
        logits = model(x)
    out = {"adv": tb._out(adv), "logits": tb._out(logits)}
    if attack == "apgd":
        out["ties"] = tb._out(ties.to(torch.int32))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs")
    ap.add_argument("outputs")
    ap.add_argument("--spec-json", required=True)
    args = ap.parse_args(argv)
    try:
        inputs, _ = tb.read_safetensors(args.inputs)
        spec = json.loads(args.spec_json)
        if isinstance(spec, list):
            labels = {k: v for k, v in inputs.items() if k.startswith("y.")}
            common = {k: v for k, v in inputs.items() if not k.startswith("y.")}
            out = {}
            for i, one in enumerate(spec):
                mine = dict(common)
                if f"y.{i}" in labels:
                    mine["y"] = labels[f"y.{i}"]
                for k, v in run(one, mine).items():
                    out[f"{k}.{i}"] = v
        else:
            out = run(spec, inputs)
        tb.write_safetensors(args.outputs, out, {"torch": tb.torch.__version__})
    except (tb.BridgeError, KeyError, ValueError) as e:
        print(f"torch_attacks: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
