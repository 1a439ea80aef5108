#!/usr/bin/env python3
"""Golden values and gradients of regula's parameter penalties from PyTorch (1.13), in float64.

Reads a JSON list of jobs on stdin and writes a JSON list of results on stdout. A job:

    {"kind": "l1" | "l2" | "elastic" | "soft_svb" | "spectral",
     "shape": [out, in] or [out, in, kh, kw],
     "w": base64 of float32 little-endian values (row-major, PyTorch layout),
     "lambda": float, "l1": float, "l2": float,        # as the kind needs
     "u0": base64 float32 (out,), "iters": int}         # spectral only

A result: {"value": float, "grad": base64 of float64 values (the weight's shape)}; spectral also
"sigma". The formulas are those documented in src/regularizers/penalties.ts:

    l1        λ Σ|w|                    (autograd of abs: sign(w), 0 at 0)
    l2        (λ/2) Σ w²
    elastic   λ1 Σ|w| + (λ2/2) Σ w²
    soft_svb  λ ||G − I||_F², G = W Wᵀ if out ≤ in·kh·kw else Wᵀ W  (W = weight.reshape(out, -1))
    spectral  (λ/2) σ², σ = uᵀ W v after `iters` power iterations from u0 (u, v detached:
              Yoshida & Miyato 2017; torch.nn.utils.spectral_norm does the same iteration)

Usage: tests/penalties_test.ts runs `/usr/bin/python3 tools/torch_penalties.py` (or the
interpreter in REGULA_TORCH_PYTHON).
"""

import base64
import json
import sys

import numpy as np
import torch


def f32(s):
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float64)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode()


def run(job):
    shape = job["shape"]
    w = torch.tensor(f32(job["w"]).reshape(shape), dtype=torch.float64, requires_grad=True)
    kind = job["kind"]
    out = {}
    if kind == "l1":
        value = job["lambda"] * w.abs().sum()
    elif kind == "l2":
        value = job["lambda"] / 2 * (w * w).sum()
    elif kind == "elastic":
        value = job["l1"] * w.abs().sum() + job["l2"] / 2 * (w * w).sum()
    elif kind == "soft_svb":
        wm = w.reshape(shape[0], -1)
        m, k = wm.shape
        g = wm @ wm.T if m <= k else wm.T @ wm
        eye = torch.eye(g.shape[0], dtype=torch.float64)
        value = job["lambda"] * ((g - eye) ** 2).sum()
    elif kind == "spectral":
        wm = w.reshape(shape[0], -1)
        u = torch.tensor(f32(job["u0"]), dtype=torch.float64)
        with torch.no_grad():
            for _ in range(job["iters"]):
                v = torch.nn.functional.normalize(wm.T @ u, dim=0, eps=0)
                u = torch.nn.functional.normalize(wm @ v, dim=0, eps=0)
        sigma = u @ wm @ v
        value = job["lambda"] / 2 * sigma**2
        out["sigma"] = sigma.item()
    else:
        raise ValueError(f"unknown kind {kind!r}")
    value.backward()
    out["value"] = value.item()
    out["grad"] = b64(w.grad.numpy())
    return out


def main():
    torch.set_grad_enabled(True)
    jobs = json.load(sys.stdin)
    json.dump([run(j) for j in jobs], sys.stdout)


if __name__ == "__main__":
    main()
