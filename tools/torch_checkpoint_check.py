#!/usr/bin/python3
"""torch_checkpoint_check: load a regula checkpoint into the equivalent torch.nn model.

Run with Debian's PyTorch (``/usr/bin/python3``, package ``python3-torch``)::

    /usr/bin/python3 tools/torch_checkpoint_check.py CHECKPOINT.safetensors IN.safetensors OUT.safetensors

The model is rebuilt from the checkpoint's ``__metadata__["model"]`` (a regula
model spec, JSON) by ``tools/torch_models.py`` when that module offers
``build_model(spec)``, else by the small builder below (``mlp`` and
``lenet``). The checkpoint's tensors are loaded with
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

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def _act(name):
    return nn.ReLU() if name == "relu" else nn.Tanh()


class _Normalize(nn.Module):
    """(x - mean) / std per channel (axis 1); no state_dict entries, as regula's Normalize."""

    def __init__(self, n):
        super().__init__()
        shape = (1, -1) + (1,) * 2
        self.mean = torch.tensor(n["mean"], dtype=torch.float32).reshape(shape)
        self.std = torch.tensor(n["std"], dtype=torch.float32).reshape(shape)

    def forward(self, x):
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _fallback_model(spec):
    """LeNet-5 (LeCun et al. 1998, padded first conv) and an MLP, with regula's names."""
    net = _fallback_core(spec)
    if spec.get("normalize"):
        if spec.get("kind") != "lenet":
            raise BridgeError("fallback builder: normalize only for lenet")
        return _Wrapped(_Normalize(spec["normalize"]), net)
    return net


class _Wrapped(nn.Module):
    """Applies a parameter-free preprocessing module, keeping the net's state_dict names."""

    def __init__(self, pre, net):
        super().__init__()
        self.pre = [pre]  # a plain list: no state_dict entries
        self.net = net

    def forward(self, x):
        return self.net(self.pre[0](x))

    def state_dict(self, *a, **k):
        return self.net.state_dict(*a, **k)

    def load_state_dict(self, *a, **k):
        return self.net.load_state_dict(*a, **k)


def _fallback_core(spec):
    kind = spec.get("kind")
    act = spec.get("activation", "tanh" if kind == "lenet" else "relu")
    if kind == "lenet":
        class LeNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
                self.conv2 = nn.Conv2d(6, 16, 5)
                self.fc1 = nn.Linear(400, 120)
                self.fc2 = nn.Linear(120, 84)
                self.fc3 = nn.Linear(84, 10)
                self.act = _act(act)
                self.pool = nn.MaxPool2d(2)

            def forward(self, x):
                x = self.pool(self.act(self.conv1(x)))
                x = self.pool(self.act(self.conv2(x)))
                x = torch.flatten(x, 1)
                return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))
        return LeNet()
    if kind == "mlp":
        sizes = [spec["inputs"], *spec["hidden"], spec["classes"]]

        class Mlp(nn.Module):
            def __init__(self):
                super().__init__()
                for i in range(len(sizes) - 1):
                    setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
                self.act = _act(act)

            def forward(self, x):
                x = torch.flatten(x, 1)
                for i in range(len(sizes) - 1):
                    x = getattr(self, f"fc{i + 1}")(x)
                    if i + 2 < len(sizes):
                        x = self.act(x)
                return x
        return Mlp()
    raise BridgeError(f"no torch model for spec {json.dumps(spec)} "
                      f"(tools/torch_models.py has no build_model, fallback knows mlp and lenet)")


def build(spec):
    try:
        import torch_models  # written alongside src/models
        if hasattr(torch_models, "build_model"):
            return torch_models.build_model(spec)
    except ImportError:
        pass
    return _fallback_model(spec)


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
        except (BridgeError, OSError, ValueError, KeyError) as e:
            print(f"torch_checkpoint_check: {e}", file=sys.stderr)
            return 2
        return 0
    if len(argv) != 3:
        print("usage: torch_checkpoint_check.py CHECKPOINT IN OUT | --init SPEC_JSON SEED OUT",
              file=sys.stderr)
        return 2
    try:
        run(*argv)
    except (BridgeError, OSError, ValueError, KeyError) as e:
        print(f"torch_checkpoint_check: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
