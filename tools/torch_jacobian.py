#!/usr/bin/python3
"""torch_jacobian: PyTorch 1.13 references for regula's penalties on the function
(src/regularizers/jacobian.ts, determinant.ts, gradient_norm.ts, confidence.ts), each
value and every parameter gradient by double backprop
(``torch.autograd.grad(..., create_graph=True)``), in float64.

Run with Debian's PyTorch::

    /usr/bin/python3 tools/torch_jacobian.py --jobs JOBS.json

JOBS.json is a list of ``{"inputs": path, "outputs": path, "spec": {...}}``; inputs and
outputs are safetensors files. Models, state_dict names, dropout masks (``mask.<name>``,
0/1 keep masks) and the safetensors reader/writer come from tools/torch_bridge.py (imported,
not copied). A failing job prints ``torch_jacobian: job <i>: <message>`` and the others run.

Spec::

    op      "jacobian" | "determinant" | "gradient_norm" | "confidence"
    model   {"layers": [...]}  (torch_bridge's format)
    mode    "eval" (default) | "train" (dropout with the given masks; BatchNorm on the batch
            statistics, which couple the samples: J_b below is then the batch's
            d(sum_j v_j . logits_j)/dx_b, as plain autograd gives it, and the one forward updates
            the running statistics once, as a training step does)
    lambda  coefficient (jacobian: the loss term is lambda/2 * mean R; determinant and
            gradient_norm: lambda * mean R), default 1
    beta, gamma   confidence: R = -beta H(p), or beta * max(0, gamma - H) when gamma is given
    label_smoothing   gradient_norm: cross-entropy label smoothing, default 0

Inputs: ``x``, state_dict entries, masks; jacobian: ``v`` (nproj, B, C) fixed projections
(or spec ``"nproj": -1``, exact); gradient_norm: ``y`` (B,) labels.

Formulas (per sample b, J_b = d logits_b / d x_b, C classes, D = input size):

jacobian       R_b = (C / nproj) sum_mu ||v_mu,b^T J_b||^2           value = lambda/2 mean R
determinant    square J: R_b = (det J_b - 1)^2; otherwise with G the smaller Gram matrix
               (J J^T if C < D, J^T J if C > D): R_b = (sqrt(det G) - 1)^2   value = lambda mean R
gradient_norm  R_b = ||d CE_b / d x_b||^2 (CE_b the per-sample loss)   value = lambda mean R
confidence     R_b = -beta H(p_b) or beta max(0, gamma - H(p_b))         value = mean R

Outputs: ``value`` [1], ``per_sample`` (B,), ``logits``, ``grad.<param>`` for every
parameter (zeros where unused), and ``state.<buffer>`` for every buffer after the forward
(BatchNorm running statistics).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bridge as tb  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class JobError(Exception):
    pass


def _rows(logits, x):
    """J rows u_c = J^T e_c, each (B, D), differentiable."""
    b, c = logits.shape
    rows = []
    for i in range(c):
        e = torch.zeros_like(logits)
        e[:, i] = 1
        (u,) = torch.autograd.grad(logits, x, grad_outputs=e, create_graph=True)
        rows.append(u.reshape(b, -1))
    return torch.stack(rows, 1)  # (B, C, D)


def per_sample(spec, inputs, used, model, x, logits):
    op = spec["op"]
    b, c = logits.shape
    if op == "jacobian":
        if spec.get("nproj") == -1:
            vs = torch.eye(c, dtype=logits.dtype).unsqueeze(1).expand(c, b, c)
        else:
            if "v" not in inputs:
                raise JobError('jacobian needs input "v" (nproj, B, C) or "nproj": -1')
            used.add("v")
            vs = tb._to_torch(inputs["v"], logits.dtype)
        r = torch.zeros(b, dtype=logits.dtype)
        for mu in range(vs.shape[0]):
            (u,) = torch.autograd.grad(logits, x, grad_outputs=vs[mu], create_graph=True)
            r = r + u.reshape(b, -1).pow(2).sum(1)
        r = r * (c / vs.shape[0])
        return r, float(spec.get("lambda", 1)) / 2 * r.mean()
    if op == "determinant":
        j = _rows(logits, x)
        d = j.shape[2]
        if c == d:
            r = (torch.linalg.det(j) - 1) ** 2
        else:
            g = j @ j.transpose(1, 2) if c < d else j.transpose(1, 2) @ j
            r = (torch.sqrt(torch.linalg.det(g)) - 1) ** 2
        return r, float(spec.get("lambda", 1)) * r.mean()
    if op == "gradient_norm":
        if "y" not in inputs:
            raise JobError('gradient_norm needs input "y"')
        used.add("y")
        ce = F.cross_entropy(logits, tb._labels(inputs["y"]), reduction="sum",
                             label_smoothing=float(spec.get("label_smoothing", 0)))
        (g,) = torch.autograd.grad(ce, x, create_graph=True)
        r = g.reshape(b, -1).pow(2).sum(1)
        return r, float(spec.get("lambda", 1)) * r.mean()
    if op == "confidence":
        logp = F.log_softmax(logits, 1)
        h = -(logp.exp() * logp).sum(1)
        beta = float(spec.get("beta", 1))
        if spec.get("gamma") is None:
            r = -beta * h
        else:
            r = beta * torch.relu(float(spec["gamma"]) - h)
        return r, r.mean()
    raise JobError(f"unknown op {op!r}")


def run(spec, inputs):
    used = set()
    model, outputs = tb._build(spec, inputs, used)
    tb._set_mode(model, spec, "eval")
    fdt = tb._float_dtype(spec)
    tb._set_masks(model, inputs, used, fdt)
    used.add("x")
    x = tb._to_torch(inputs["x"], fdt).requires_grad_(True)
    logits = model(x)
    r, value = per_sample(spec, inputs, used, model, x, logits)
    outputs = {"logits": tb._out(logits), "per_sample": tb._out(r),
               "value": tb._out(value.reshape(1))}
    params = tb._named_params(model)
    gs = torch.autograd.grad(value, [p for _, p in params], allow_unused=True)
    for (k, p), g in zip(params, gs):
        outputs["grad." + k] = tb._out(g if g is not None else torch.zeros_like(p))
    for k, t in model.named_buffers():
        outputs["state." + k] = tb._out(t.to(torch.float64))
    unused = sorted(set(inputs) - used)
    if unused:
        raise JobError(f"unused inputs {unused}")
    return outputs


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "--jobs":
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2], encoding="utf-8") as f:
        jobs = json.load(f)
    failed = False
    for i, job in enumerate(jobs):
        try:
            inputs, _ = tb.read_safetensors(job["inputs"])
            outputs = run(job["spec"], inputs)
            tb.write_safetensors(job["outputs"], outputs, {"torch": torch.__version__})
        except (JobError, tb.BridgeError) as e:
            print(f"torch_jacobian: job {i}: {e}", file=sys.stderr)
            failed = True
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
