#!/usr/bin/python3
"""torch_checkpoint_check: load a regula checkpoint into the equivalent torch.nn model.

Run with Debian's PyTorch (``/usr/bin/python3``, package ``python3-torch``)::

    /usr/bin/python3 tools/torch_checkpoint_check.py CHECKPOINT.safetensors IN.safetensors OUT.safetensors

The model is rebuilt from the checkpoint's ``__metadata__["model"]`` (a regula
model spec, JSON) by ``tools/torch_models.build_model``. The checkpoint's tensors are loaded with
``model.load_state_dict(state, strict=True)``: every state_dict name, shape
and layout must match PyTorch's, or the load fails. The model is put in eval
mode and applied to ``x`` from IN.safetensors; OUT.safetensors receives
``logits`` (float32) and, as ``state.<name>``, the state_dict PyTorch ended up
with (for checking buffers such as ``num_batches_tracked``).

The other direction::

    /usr/bin/python3 tools/torch_checkpoint_check.py --init SPEC_JSON SEED OUT.safetensors

builds the model with PyTorch's own initialization after ``torch.manual_seed(SEED)``, runs one
forward pass in training mode on a seeded batch (so BatchNorm has running statistics) and
writes its ``state_dict`` as a checkpoint (``__metadata__["model"]`` = the spec) for regula to
load.

Errors go to stderr as one line ``torch_checkpoint_check: ...``, exit status 2.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from torch_bridge import BridgeError, read_safetensors, write_safetensors  # noqa: E402
from torch_models import SpecError, build_model as build  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def run(ck_path, in_path, out_path):
    tensors, meta = read_safetensors(ck_path)
    if not meta or "model" not in meta:
        raise BridgeError(f"{ck_path}: no model spec in __metadata__")
    spec = json.loads(meta["model"])
    model = build(spec).float()
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BridgeError(" ".join(str(e).split())) from None
    model.eval()
    inputs, _ = read_safetensors(in_path)
    if "x" not in inputs:
        raise BridgeError(f"{in_path}: no tensor 'x'")
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs["x"].astype(np.float32)))
    out = {"logits": logits.numpy().astype(np.float32)}
    for k, v in model.state_dict().items():
        out["state." + k] = v.numpy()
    write_safetensors(out_path, out)


def init(spec_json, seed, out_path):
    spec = json.loads(spec_json)
    torch.manual_seed(int(seed))
    model = build(spec).float()
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        c = spec.get("inChannels", 3 if spec.get("kind") in ("ddnet", "resnet18") else 1)
        size = spec.get("inputSize", 32 if spec.get("kind") in ("ddnet", "resnet18") else 28)
        model.train()
        with torch.no_grad():
            model(torch.rand(4, c, size, size))
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    write_safetensors(out_path, state, {"format": "pt", "model": json.dumps(spec)})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 4 and argv[0] == "--init":
        try:
            init(*argv[1:])
        except (BridgeError, SpecError, OSError, ValueError, KeyError) as e:
            print(f"torch_checkpoint_check: {e}", file=sys.stderr)
            return 2
        return 0
    if len(argv) != 3:
        print("usage: torch_checkpoint_check.py CHECKPOINT IN OUT | --init SPEC_JSON SEED OUT",
              file=sys.stderr)
        return 2
    try:
        run(*argv)
    except (BridgeError, SpecError, OSError, ValueError, KeyError) as e:
        print(f"torch_checkpoint_check: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
