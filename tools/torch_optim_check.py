#!/usr/bin/python3
"""Cross-check oracle: PyTorch 1.13 optimizers, losses, LR schedules and init helpers.

Reads a JSON list of jobs on stdin and writes a JSON list of results (same order) on stdout.
Tests in tests/{loss,optim,init}_test.ts run it through Deno.Command with Debian's
/usr/bin/python3 (python3-torch). Everything runs in float32 on the CPU unless a job says
otherwise, as on the GPU. NaN and infinities are written as null.

Jobs ("op" selects):
  optim          {algorithm: "sgd"|"adam"|"adamw", params: [{shape, data}], grads: [[flat per
                  param] per step], lrs: [lr per step], options: {momentum, dampening, nesterov,
                  weight_decay, betas, eps, amsgrad, maximize}}
                  -> {trajectory: [[flat per param] after each step]}
  cross_entropy  {shape: [B, K], logits, labels | soft, label_smoothing, reduction}
                  -> {loss, grad}
  mse            {shape, pred, target, reduction} -> {loss, grad}
  schedule       {kind: "multistep"|"cosine"|"linear", lr, steps, kwargs}
                  -> {lrs: [lr in effect at step t, t = 0 .. steps-1]}
  orthogonal     {rows, cols, gaussian (rows*cols, row-major), gain}
                  -> {q}: torch.nn.init.orthogonal_'s transform of that Gaussian matrix
  gain           {nonlinearity, param} -> {gain}: torch.nn.init.calculate_gain
  fans           {shape} -> {fan_in, fan_out}: torch.nn.init._calculate_fan_in_and_fan_out

Usage: echo '[{"op": "gain", "nonlinearity": "tanh"}]' | /usr/bin/python3 tools/torch_optim_check.py
"""

import json
import math
import sys

import torch
import torch.nn.functional as F


def flat(t):
    return [None if not math.isfinite(v) else v for v in t.detach().reshape(-1).tolist()]


def num(v):
    return v if math.isfinite(v) else None


def run_optim(job):
    params = [
        torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"]).requires_grad_()
        for p in job["params"]
    ]
    o = job.get("options", {})
    alg = job["algorithm"]
    lr0 = job["lrs"][0]
    if alg == "sgd":
        opt = torch.optim.SGD(
            params,
            lr=lr0,
            momentum=o.get("momentum", 0),
            dampening=o.get("dampening", 0),
            nesterov=o.get("nesterov", False),
            weight_decay=o.get("weight_decay", 0),
            maximize=o.get("maximize", False),
            foreach=False,
        )
    elif alg in ("adam", "adamw"):
        cls = torch.optim.Adam if alg == "adam" else torch.optim.AdamW
        opt = cls(
            params,
            lr=lr0,
            betas=tuple(o.get("betas", (0.9, 0.999))),
            eps=o.get("eps", 1e-8),
            weight_decay=o.get("weight_decay", 0 if alg == "adam" else 1e-2),
            amsgrad=o.get("amsgrad", False),
            maximize=o.get("maximize", False),
            foreach=False,
        )
    else:
        raise ValueError(f"unknown algorithm {alg}")
    trajectory = []
    for step, grads in enumerate(job["grads"]):
        for g in opt.param_groups:
            g["lr"] = job["lrs"][step]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float32).reshape(p.shape)
        opt.step()
        trajectory.append([flat(p) for p in params])
    return {"trajectory": trajectory}


def run_cross_entropy(job):
    b, k = job["shape"]
    z = torch.tensor(job["logits"], dtype=torch.float32).reshape(b, k).requires_grad_()
    if "soft" in job:
        target = torch.tensor(job["soft"], dtype=torch.float32).reshape(b, k)
    else:
        target = torch.tensor(job["labels"], dtype=torch.int64)
    loss = F.cross_entropy(
        z,
        target,
        label_smoothing=job.get("label_smoothing", 0.0),
        reduction=job.get("reduction", "mean"),
    )
    loss.backward()
    return {"loss": num(loss.item()), "grad": flat(z.grad)}


def run_mse(job):
    pred = torch.tensor(job["pred"], dtype=torch.float32).reshape(job["shape"]).requires_grad_()
    target = torch.tensor(job["target"], dtype=torch.float32).reshape(job["shape"])
    loss = F.mse_loss(pred, target, reduction=job.get("reduction", "mean"))
    loss.backward()
    return {"loss": num(loss.item()), "grad": flat(pred.grad)}


def run_schedule(job):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=job["lr"])
    kw = job.get("kwargs", {})
    kind = job["kind"]
    if kind == "multistep":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, **kw)
    elif kind == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, **kw)
    elif kind == "linear":
        sched = torch.optim.lr_scheduler.LinearLR(opt, **kw)
    else:
        raise ValueError(f"unknown schedule {kind}")
    lrs = []
    for _ in range(job["steps"]):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {"lrs": lrs}


def run_orthogonal(job):
    # The body of torch.nn.init.orthogonal_ (1.13) after its normal_() draw.
    rows, cols = job["rows"], job["cols"]
    flattened = torch.tensor(job["gaussian"], dtype=torch.float64).reshape(rows, cols)
    if rows < cols:
        flattened.t_()
    q, r = torch.linalg.qr(flattened)
    d = torch.diag(r, 0)
    ph = d.sign()
    q *= ph
    if rows < cols:
        q.t_()
    return {"q": flat(q * job.get("gain", 1.0))}


def run_gain(job):
    return {"gain": torch.nn.init.calculate_gain(job["nonlinearity"], job.get("param"))}


def run_fans(job):
    fi, fo = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(job["shape"]))
    return {"fan_in": fi, "fan_out": fo}


OPS = {
    "optim": run_optim,
    "cross_entropy": run_cross_entropy,
    "mse": run_mse,
    "schedule": run_schedule,
    "orthogonal": run_orthogonal,
    "gain": run_gain,
    "fans": run_fans,
}


def main():
    torch.set_num_threads(1)
    jobs = json.load(sys.stdin)
    out = []
    for job in jobs:
        op = job.get("op")
        if op not in OPS:
            raise SystemExit(f"torch_optim_check: unknown op {op!r}; known: {sorted(OPS)}")
        out.append(OPS[op](job))
    json.dump(out, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
