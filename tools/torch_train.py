#!/usr/bin/python3
"""torch_train: PyTorch (CPU) peer of bench/wasm_train.ts, training steps on synthetic data.

The model is regula's ``buildModel(rt, spec)`` as tools/torch_models.py builds it from the same
JSON spec (``--spec``: LeNet-5 with tanh, or DDNet with dropout 0.5; PyTorch's default init), the
data the benchmark's synthetic batch (``syntheticData(batch * C * H * W, 1)`` and
``syntheticLabels`` of bench/_peers/common.ts, reproduced here), one step = forward, mean softmax
cross-entropy, backward, ``torch.optim.SGD(lr, momentum)`` with the gradients zeroed first. Only
the parameters need gradients (the input has none), as in the other implementations.
``torch.set_num_threads(--threads)``.

``--jacobian LAMBDA`` adds the Jacobian regularizer as regula's ``jacobian`` with one projection
(Hoffman et al. 2019): ``LAMBDA/2 * mean_b C ||v_b^T J_b||^2``, v_b a fresh unit vector per sample
and step, ``v^T J`` by ``torch.autograd.grad(logits, x, v, create_graph=True)`` and its gradient
by double backprop (the input then needs a gradient).

The benchmark drives it over stdin so that its rounds interleave with the other
implementations' in the same run: after start-up (model, data, two warm-up steps) it prints
``{"ready": true, "torch": ..., "threads": ..., "blas": ...}`` and then answers each line

- ``round N``: N steps back to back, timed with ``time.perf_counter``; prints ``{"ms": ms per
  step, "loss": the last step's loss}``;
- ``quit`` (or end of input): exits.

Usage::

    /usr/bin/python3 tools/torch_train.py --spec '{"kind": "lenet"}' --batch 64 --shape 1,28,28
        [--classes 10] [--lr 0.01] [--momentum 0.9] [--threads 2] [--jacobian 0.01]
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def synthetic_data(n, seed):
    """bench/_peers/common.ts syntheticData: s = 1664525 s + 1013904223 mod 2^32, s / 2^32."""
    out = [0.0] * n
    s = seed
    for i in range(n):
        s = (1664525 * s + 1013904223) % 4294967296
        out[i] = s / 4294967296
    return torch.tensor(out, dtype=torch.float64).to(torch.float32)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--shape", required=True, help="C,H,W")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jacobian", type=float, default=None, metavar="LAMBDA")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = [int(v) for v in args.shape.split(",")]
    n = args.batch * shape[0] * shape[1] * shape[2]
    x = synthetic_data(n, 1).reshape(args.batch, *shape)
    y = torch.tensor([(i * 7 + 3) % args.classes for i in range(args.batch)], dtype=torch.int64)
    model = torch_models.build_model(args.spec)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    def step():
        opt.zero_grad(set_to_none=True)
        if args.jacobian is None:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        else:
            xg = x.detach().requires_grad_()
            logits = model(xg)
            loss = F.cross_entropy(logits, y)
            v = torch.randn_like(logits)
            v = v / v.norm(dim=1, keepdim=True)
            (u,) = torch.autograd.grad(logits, xg, v, create_graph=True)
            c = logits.shape[1]
            penalty = args.jacobian / 2 * c * u.pow(2).sum() / args.batch
            (loss + penalty).backward()
        opt.step()
        return loss

    for _ in range(2):
        step()
    blas = "?"
    for part in torch.__config__.show().replace(",", " ").split():
        if part.startswith("BLAS_INFO="):
            blas = part.split("=", 1)[1]
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": blas}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] != "round":
            print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)
            continue
        steps = max(1, int(words[1]))
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        ms = (time.perf_counter() - t0) * 1e3 / steps
        print(json.dumps({"ms": ms, "loss": float(loss)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
