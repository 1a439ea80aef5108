#!/usr/bin/python3
"""torch_bridge: PyTorch reference computations for regula's golden tests.

Run with Debian's PyTorch (``/usr/bin/python3``, package ``python3-torch``)::

    /usr/bin/python3 tools/torch_bridge.py IN.safetensors OUT.safetensors \
        [--spec SPEC.json | --spec-json '{"op": ...}']
    /usr/bin/python3 tools/torch_bridge.py --jobs JOBS.json

``--jobs`` runs a list of ``{"inputs": path, "outputs": path, "spec"?: {...}}``
in one process, since importing torch takes a second or two; a failing job
prints ``torch_bridge: job <i>: <message>``, writes nothing, and the others
still run (exit status 2 if any failed).

Inputs and outputs are safetensors files (read and written here with struct,
json and numpy, following the format of huggingface/safetensors: 8-byte
little-endian header length, JSON header padded with spaces to 8 bytes,
tensors sorted by descending dtype alignment then name; the ``safetensors``
package is not needed). Without ``--spec``/``--spec-json`` the spec is read
from the input's ``__metadata__["spec"]``. Errors in the inputs or the spec
go to stderr as one line ``torch_bridge: ...`` with exit status 2.

Spec (JSON object)::

    op           "identity" | "forward" | "jacobian_penalty" | "train_sgd"
    model        {"layers": [...]}, or a regula ModelSpec {"kind": "lenet", ...}
                 (src/models/spec.ts; built by tools/torch_models.py with the same
                 state_dict names; its dropouts are "drop1", "drop2", ...)
    dtype        "float64" (default) | "float32"    model, inputs and float outputs
    mode         "eval" | "train"                   default "eval" ("train" for train_sgd)
    seed         torch.manual_seed before running (dropout without masks), default 0
    init_seed    if set, state_dict entries missing from the inputs get PyTorch's
                 default initialization after torch.manual_seed(init_seed), and every
                 initial entry is returned as "init.<name>"; if unset they are an error
    label_smoothing   cross-entropy label smoothing (PyTorch semantics), default 0
    return_state      also return the final state_dict as "state.<name>"
    hooks             forward: submodule names (e.g. ["act1", "layer1.0"]) whose outputs are
                      returned as "hook.<name>", caught by register_forward_hook
    param_grads       forward: also return "grad.<param>" (default true; false for
                      big models where only "grad.x" is wanted)

Layers (``model.layers``, applied in order; names give state_dict keys such
as ``conv1.weight``; dotted names nest, e.g. ``layer1.0.conv1``; any layer
may have a ``"name"``, required where there are parameters)::

    {"type": "conv2d", "name", "in", "out", "kernel", "stride"=1, "padding"=0,
     "dilation"=1, "groups"=1, "bias"=true}
    {"type": "linear", "name", "in", "out", "bias"=true}
        conv2d and linear take "weight_norm"=false: torch.nn.utils.weight_norm(dim=0), whose
        state_dict has weight_g (out, 1, ...) and weight_v in place of weight
    {"type": "layernorm", "name", "shape": [...], "eps"=1e-5, "affine"=true}   nn.LayerNorm
    {"type": "groupnorm", "name", "groups", "channels", "eps"=1e-5, "affine"=true}   nn.GroupNorm
    {"type": "maxpool2d", "kernel", "stride"=kernel, "padding"=0}
    {"type": "avgpool2d", "kernel", "stride"=kernel, "padding"=0, "count_include_pad"=true}
    {"type": "batchnorm2d" | "batchnorm1d", "name", "channels", "eps"=1e-5, "momentum"=0.1}
    {"type": "dropout", "p"=0.5, "name"?}      keep mask from input "mask.<name>"
                                               ("mask.<layer index>" when unnamed)
    {"type": "normalize", "mean": [...], "std": [...]}   per channel (axis 1), no parameters
    {"type": "flatten"}  {"type": "relu"}  {"type": "tanh"}  {"type": "sigmoid"}
    {"type": "leaky_relu", "slope"=0.01}  {"type": "softplus", "beta"=1, "threshold"=20}
    {"type": "identity"}
    {"type": "basic_block", "name", "in", "out", "stride"=1}   torchvision's ResNet
                                               BasicBlock (tools/torch_models.py)

Inputs are named: ``x`` (model input), ``y`` (integer labels), state_dict
entries by name, ``mask.<dropout name>`` (0/1 keep masks shaped like the
dropout's input; the layer computes ``x * mask / (1 - p)`` in train mode),
and per op:

identity
    Returns every input tensor and the input metadata unchanged.
forward
    Outputs ``logits``. With ``y``: ``loss`` (mean cross-entropy), ``grad.x``
    and ``grad.<param>`` (d loss / d input and parameters). With ``dy``
    (shaped like the logits) instead of ``y``: the same gradients of
    ``sum(logits * dy)`` (a vector-Jacobian product). With ``tx`` (shaped like
    ``x``): ``jvp``, the Jacobian of the logits w.r.t. ``x`` applied to ``tx``.
jacobian_penalty
    Hoffman, Roberts & Yaida 2019, "Robust learning with Jacobian
    regularization": per sample ``R(x) = (C / nproj) sum_mu ||v_mu^T J(x)||^2``
    with ``J = d logits / d x`` and given unit vectors ``v`` (input ``v``,
    shape (nproj, B, C) or (nproj, C) for one set shared by all samples), or
    the exact ``||J||_F^2`` with spec ``"nproj": -1`` (one-hot v, nproj = C).
    Outputs ``logits``, ``jr_per_sample`` (B,), ``jr`` (batch mean),
    ``jr_grad.x`` and ``jr_grad.<param>`` by double backprop
    (``torch.autograd.grad(..., create_graph=True)``). With ``y`` also ``ce``,
    ``loss = ce + (lambda / 2) * jr`` (spec ``"lambda"``, default 0) and its
    gradients ``grad.x``, ``grad.<param>``. BatchNorm in train mode couples the
    samples of a batch: ``J`` is then plain autograd's batch-coupled one.
train_sgd
    ``x`` (S, B, ...) and ``y`` (S, B) hold S batches; runs ``steps`` (default
    S, cycling through the batches) steps of ``torch.optim.SGD`` with ``lr``,
    ``momentum``=0, ``dampening``=0, ``weight_decay``=0, ``nesterov``=false;
    ``no_decay``: list of parameter-name endings (e.g. ["bias"]) excluded from
    weight decay. Optional ``jr_lambda`` with input ``v`` (S, nproj, B, C) or
    spec ``"nproj": -1`` adds ``(jr_lambda / 2) * jr``; dropout masks
    ``mask.<name>`` get a leading S axis. Optional ``adv`` {"attack": "pgd" |
    "fgsm", "eps", "alpha", "steps", "ratio"=1}: adversarial training (Madry et
    al. 2018; regula's src/train/adversarial.ts): each step first replaces the
    first round(ratio B) samples of its batch by tools/torch_attacks.py's
    ``pgd`` (no random start) or ``fgsm`` against the current weights, the model
    in eval mode for the attack, then trains on that batch. Outputs ``losses``
    (steps,), the objective of each step's batch before its update,
    ``ce_losses`` (steps,), and the final ``state.<name>``. With
    ``"trajectory": true`` also ``traj.<param>`` (steps, 3), float64:
    ``||theta_t||^2``, ``||grad_t||^2`` and ``||theta_t - theta_0||^2`` at each
    step, after backward and before the update.

Float outputs are in the spec's dtype; integer state (BatchNorm's
``num_batches_tracked``) is I64.
"""

import argparse
import json
import struct
import sys

import numpy as np

_ST_DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
}
# Position in the reference Dtype enum (increasing alignment); the writer
# orders tensors by descending rank, then by name, as safetensors/src/tensor.rs does.
_ST_RANK = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 5, "U16": 6, "F16": 7, "I32": 9,
            "U32": 10, "F32": 11, "F64": 12, "I64": 13, "U64": 14}
_NP_TO_ST = {v.newbyteorder("<") if v.itemsize > 1 else v: k for k, v in _ST_DTYPES.items()}


class BridgeError(Exception):
    """A bad input or spec: reported as one line, exit status 2."""


def _contiguous(a):
    # np.ascontiguousarray would turn a 0-d array (a scalar tensor, shape []) into shape (1,).
    a = np.asarray(a)
    return a if a.flags.c_contiguous else a.copy(order="C")


def read_safetensors(path):
    """Reads a safetensors file into ({name: ndarray}, metadata dict or None)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise BridgeError(f"{path}: truncated, {len(buf)} bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise BridgeError(f"{path}: header length {n} runs past the end ({len(buf)} bytes)")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BridgeError(f"{path}: bad header JSON: {e}") from None
    if not isinstance(header, dict):
        raise BridgeError(f"{path}: header is not a JSON object")
    # None when absent, so that the identity op does not add an empty map.
    metadata = header.pop("__metadata__", None)
    data = memoryview(buf)[8 + n:]
    entries = []
    for name, info in header.items():
        try:
            begin, end = (int(o) for o in info["data_offsets"])
            entries.append((begin, end, name, info["dtype"], tuple(int(d) for d in info["shape"])))
        except (KeyError, TypeError, ValueError):
            raise BridgeError(f"{path}: tensor {name!r} needs dtype, shape and data_offsets, "
                              f"got {info!r}") from None
    tensors, covered = {}, 0
    for begin, end, name, st, shape in sorted(entries):
        dtype = _ST_DTYPES.get(st)
        if dtype is None:
            raise BridgeError(f"{path}: tensor {name!r} has unknown dtype {st!r}")
        if begin != covered or end > len(data):
            raise BridgeError(f"{path}: tensor {name!r} has bad data_offsets {[begin, end]}")
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise BridgeError(f"{path}: tensor {name!r}: shape {list(shape)} does not match "
                              f"data_offsets {[begin, end]}")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
        covered = end
    if covered != len(data):
        raise BridgeError(f"{path}: {len(data) - covered} bytes after the last tensor")
    return tensors, metadata


def encode_safetensors(tensors, metadata=None):
    """Serializes {name: ndarray} (and an optional str->str map) to bytes."""
    items = []
    for name, a in tensors.items():
        a = _contiguous(a)
        dt = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
        st = _NP_TO_ST.get(dt)
        if st is None:
            raise BridgeError(f"tensor {name!r}: numpy dtype {a.dtype} has no safetensors name")
        items.append((name, st, a.astype(dt, copy=False)))
    items.sort(key=lambda t: (-_ST_RANK[t[1]], t[0].encode("utf-8")))
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, st, a in items:
        header[name] = {"dtype": st, "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text] + [a.tobytes() for _, _, a in items])


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: ndarray} to a safetensors file."""
    with open(path, "wb") as f:
        f.write(encode_safetensors(tensors, metadata))


# ---------------------------------------------------------------------------
# Everything below needs torch.

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as _e:  # pragma: no cover - reported by main()
    torch = None
    _TORCH_ERROR = str(_e)
else:
    import os as _os
    sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))
    import torch_models


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _module_classes():
    class Normalize(nn.Module):
        """(x - mean[c]) / std[c] over axis 1; constants, not state_dict entries."""

        def __init__(self, mean, std):
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float64), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float64), persistent=False)

        def forward(self, x):
            if x.dim() < 2 or x.shape[1] != self.mean.numel():
                raise BridgeError(f"normalize: input {list(x.shape)} needs {self.mean.numel()} "
                                  f"channels on axis 1")
            view = (1, -1) + (1,) * (x.dim() - 2)
            return (x - self.mean.view(view)) / self.std.view(view)

    class MaskedDropout(nn.Module):
        """Dropout whose keep mask can be given (for matching regula's RNG)."""

        def __init__(self, p, label):
            super().__init__()
            self.p, self.label, self.mask = p, label, None

        def forward(self, x):
            if not self.training or self.p == 0:
                return x
            if self.mask is None:
                return F.dropout(x, self.p, True)
            if tuple(self.mask.shape) != tuple(x.shape):
                raise BridgeError(f"mask.{self.label} has shape {list(self.mask.shape)}, "
                                  f"dropout input is {list(x.shape)}")
            return x * self.mask / (1 - self.p)

    return Normalize, MaskedDropout


_LAYER_KEYS = {
    "conv2d": ({"name", "in", "out", "kernel"},
               {"stride", "padding", "dilation", "groups", "bias", "weight_norm"}),
    "linear": ({"name", "in", "out"}, {"bias", "weight_norm"}),
    "layernorm": ({"name", "shape"}, {"eps", "affine"}),
    "groupnorm": ({"name", "groups", "channels"}, {"eps", "affine"}),
    "maxpool2d": ({"kernel"}, {"stride", "padding"}),
    "avgpool2d": ({"kernel"}, {"stride", "padding", "count_include_pad"}),
    "batchnorm2d": ({"name", "channels"}, {"eps", "momentum"}),
    "batchnorm1d": ({"name", "channels"}, {"eps", "momentum"}),
    "dropout": (set(), {"p"}),
    "normalize": ({"mean", "std"}, set()),
    "flatten": (set(), set()),
    "relu": (set(), set()),
    "tanh": (set(), set()),
    "sigmoid": (set(), set()),
    "leaky_relu": (set(), {"slope"}),
    "softplus": (set(), {"beta", "threshold"}),
    "identity": (set(), set()),
    "basic_block": ({"name", "in", "out"}, {"stride"}),
}


class Net(nn.Module if torch is not None else object):
    """A chain of layers built from a JSON description."""

    def __init__(self, desc):
        super().__init__()
        Normalize, MaskedDropout = _module_classes()
        layers = desc.get("layers") if isinstance(desc, dict) else None
        if not isinstance(layers, list) or not layers:
            raise BridgeError('model must be {"layers": [...]} with at least one layer')
        self.chain, self.dropouts = [], {}
        for i, spec in enumerate(layers):
            kind = spec.get("type") if isinstance(spec, dict) else None
            if kind not in _LAYER_KEYS:
                raise BridgeError(f"layer {i}: unknown type {kind!r} "
                                  f"(known: {', '.join(sorted(_LAYER_KEYS))})")
            need, opt = _LAYER_KEYS[kind]
            opt = opt | {"name"}
            keys = set(spec) - {"type"}
            if need - keys:
                raise BridgeError(f"layer {i} ({kind}): missing {sorted(need - keys)}")
            if keys - need - opt:
                raise BridgeError(f"layer {i} ({kind}): unknown keys {sorted(keys - need - opt)} "
                                  f"(allowed: {sorted(need | opt)})")
            try:
                m = self._make(kind, spec, i, MaskedDropout, Normalize)
            except (TypeError, ValueError, RuntimeError) as e:
                raise BridgeError(f"layer {i} ({kind}): {e}") from None
            # Only layers with state_dict entries live under their name; a name on
            # another layer is a label (dropout masks are found by it).
            stateful = kind in ("conv2d", "linear", "batchnorm2d", "batchnorm1d", "basic_block",
                                "layernorm", "groupnorm")
            self._attach(spec["name"] if stateful else f"_layer{i}", m, i)
            self.chain.append((kind, spec.get("name", ""), m))

    def _make(self, kind, spec, i, MaskedDropout, Normalize):
        """One torch module for layer i."""
        g = spec.get
        if kind == "conv2d":
            m = nn.Conv2d(g("in"), g("out"), _pair(g("kernel")), stride=_pair(g("stride", 1)),
                          padding=_pair(g("padding", 0)), dilation=_pair(g("dilation", 1)),
                          groups=g("groups", 1), bias=g("bias", True))
        elif kind == "linear":
            m = nn.Linear(g("in"), g("out"), bias=g("bias", True))
        elif kind == "layernorm":
            m = nn.LayerNorm(g("shape"), eps=g("eps", 1e-5), elementwise_affine=g("affine", True))
        elif kind == "groupnorm":
            m = nn.GroupNorm(g("groups"), g("channels"), eps=g("eps", 1e-5),
                             affine=g("affine", True))
        elif kind == "maxpool2d":
            m = nn.MaxPool2d(_pair(g("kernel")), stride=_pair(g("stride", g("kernel"))),
                             padding=_pair(g("padding", 0)))
        elif kind == "avgpool2d":
            m = nn.AvgPool2d(_pair(g("kernel")), stride=_pair(g("stride", g("kernel"))),
                             padding=_pair(g("padding", 0)),
                             count_include_pad=g("count_include_pad", True))
        elif kind in ("batchnorm2d", "batchnorm1d"):
            cls = nn.BatchNorm2d if kind == "batchnorm2d" else nn.BatchNorm1d
            m = cls(g("channels"), eps=g("eps", 1e-5), momentum=g("momentum", 0.1))
        elif kind == "dropout":
            p = g("p", 0.5)
            if not 0 <= p < 1:
                raise BridgeError(f"layer {i} (dropout): p must be in [0, 1), got {p}")
            m = MaskedDropout(p, g("name", str(i)))
            self.dropouts[m.label] = m
        elif kind == "normalize":
            if len(g("mean")) != len(g("std")):
                raise BridgeError(f"layer {i} (normalize): mean and std differ in length")
            m = Normalize(g("mean"), g("std"))
        elif kind == "basic_block":
            m = torch_models.BasicBlock(g("in"), g("out"), g("stride", 1))
        elif kind == "flatten":
            m = nn.Flatten()
        elif kind == "relu":
            m = nn.ReLU()
        elif kind == "tanh":
            m = nn.Tanh()
        elif kind == "sigmoid":
            m = nn.Sigmoid()
        elif kind == "leaky_relu":
            m = nn.LeakyReLU(g("slope", 0.01))
        elif kind == "softplus":
            m = nn.Softplus(beta=g("beta", 1), threshold=g("threshold", 20))
        else:
            m = nn.Identity()
        if kind in ("conv2d", "linear") and g("weight_norm", False):
            m = torch.nn.utils.weight_norm(m, name="weight", dim=0)
        return m

    def _attach(self, name, module, i):
        parts = name.split(".")
        if not all(parts):
            raise BridgeError(f"layer {i}: bad name {name!r}")
        parent = self
        for p in parts[:-1]:
            if not hasattr(parent, p):
                parent.add_module(p, nn.Module())
            parent = getattr(parent, p)
        if hasattr(parent, parts[-1]):
            raise BridgeError(f"layer {i}: name {name!r} is used twice")
        parent.add_module(parts[-1], module)

    def forward(self, x):
        for i, (kind, name, m) in enumerate(self.chain):
            try:
                x = m(x)
            except RuntimeError as e:
                label = f"{kind} {name}" if name else kind
                raise BridgeError(f"layer {i} ({label}) on input {list(x.shape)}: "
                                  f"{str(e).splitlines()[0]}") from None
        return x


# ---------------------------------------------------------------------------


def _float_dtype(spec):
    name = spec.get("dtype", "float64")
    if name not in ("float64", "float32"):
        raise BridgeError(f'dtype must be "float64" or "float32", got {name!r}')
    return torch.float64 if name == "float64" else torch.float32


def _to_torch(a, dtype):
    t = torch.from_numpy(_contiguous(a))
    return t.to(dtype) if dtype is not None else t


def _labels(a, name="y"):
    if a.dtype.kind not in "iu":
        raise BridgeError(f"{name} must hold integer labels, got {a.dtype}")
    return torch.from_numpy(a.astype(np.int64))


def _out(t):
    return t.detach().cpu().contiguous().numpy().copy()


def _build(spec, inputs, used):
    """Builds the model, loads its state from the inputs; returns (model, outputs)."""
    fdt = _float_dtype(spec)
    if "model" not in spec:
        raise BridgeError('spec needs "model": {"layers": [...]}')
    init_seed = spec.get("init_seed")
    torch.manual_seed(0 if init_seed is None else int(init_seed))
    desc = spec["model"]
    if isinstance(desc, dict) and "kind" in desc:
        try:
            model = torch_models.build_model(desc).to(fdt)
        except torch_models.SpecError as e:
            raise BridgeError(str(e)) from None
    else:
        model = Net(desc).to(fdt)
    state = model.state_dict()
    outputs, missing = {}, []
    new_state = {}
    for key, cur in state.items():
        if key not in inputs:
            missing.append(key)
            new_state[key] = cur
            continue
        used.add(key)
        a = inputs[key]
        if tuple(a.shape) != tuple(cur.shape):
            raise BridgeError(f"{key} has shape {list(a.shape)} in the inputs, "
                              f"the model expects {list(cur.shape)}")
        new_state[key] = _to_torch(a, cur.dtype)
    if missing and init_seed is None:
        raise BridgeError(f"inputs lack state_dict entries {missing} "
                          f'(give them, or set "init_seed" to use PyTorch\'s initialization)')
    model.load_state_dict(new_state)
    if init_seed is not None:
        for key, t in model.state_dict().items():
            outputs["init." + key] = _out(t)
    return model, outputs


def _set_mode(model, spec, default):
    mode = spec.get("mode", default)
    if mode not in ("train", "eval"):
        raise BridgeError(f'mode must be "train" or "eval", got {mode!r}')
    model.train(mode == "train")


def _set_masks(model, inputs, used, fdt, step=None):
    for label, m in model.dropouts.items():
        key = "mask." + label
        if key in inputs:
            used.add(key)
            a = inputs[key] if step is None else inputs[key][step % inputs[key].shape[0]]
            m.mask = _to_torch(a, fdt)
    for key in inputs:
        if key.startswith("mask.") and key[5:] not in model.dropouts:
            raise BridgeError(f"input {key} names no dropout layer "
                              f"(dropout names: {sorted(model.dropouts)})")


def _named_params(model):
    return [(k, p) for k, p in model.named_parameters()]


def _jr(model, logits, x, v, nproj_spec):
    """Per-sample Hoffman R(x) = (C / nproj) sum_mu ||v_mu^T J(x)||^2, differentiable."""
    b, c = logits.shape
    if nproj_spec == -1:
        vs = torch.eye(c, dtype=logits.dtype).unsqueeze(1).expand(c, b, c)
    else:
        if v is None:
            raise BridgeError('jacobian_penalty needs input "v" (nproj, B, C) or spec "nproj": -1')
        if v.dim() == 2:
            v = v.unsqueeze(1).expand(v.shape[0], b, v.shape[1])
        if v.dim() != 3 or v.shape[1] != b or v.shape[2] != c:
            raise BridgeError(f"v has shape {list(v.shape)}, "
                              f"need (nproj, {b}, {c}) or (nproj, {c})")
        vs = v
    nproj = vs.shape[0]
    per_sample = torch.zeros(b, dtype=logits.dtype)
    for mu in range(nproj):
        (u,) = torch.autograd.grad(logits, x, grad_outputs=vs[mu], create_graph=True)
        per_sample = per_sample + u.reshape(b, -1).pow(2).sum(1)
    return per_sample * (c / nproj)


def _grads(value, model, x, prefix, outputs, with_params=True):
    params = _named_params(model) if with_params else []
    gs = torch.autograd.grad(value, [x] + [p for _, p in params], allow_unused=True,
                             retain_graph=True)
    outputs[prefix + "x"] = _out(gs[0] if gs[0] is not None else torch.zeros_like(x))
    for (k, p), g in zip(params, gs[1:]):
        outputs[prefix + k] = _out(g) if g is not None else _out(torch.zeros_like(p))


def op_forward(spec, inputs, used):
    fdt = _float_dtype(spec)
    model, outputs = _build(spec, inputs, used)
    _set_mode(model, spec, "eval")
    _set_masks(model, inputs, used, fdt)
    if "x" not in inputs:
        raise BridgeError('forward needs input "x"')
    used.add("x")
    x = _to_torch(inputs["x"], fdt).requires_grad_(True)
    handles = []
    for name in spec.get("hooks", []):
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise BridgeError(f"hooks: the model has no submodule {name!r}") from None
        # A forward hook sees the module's output as the model computes it.
        handles.append(module.register_forward_hook(
            lambda _m, _inp, out, name=name: outputs.__setitem__("hook." + name, _out(out))))
    torch.manual_seed(int(spec.get("seed", 0)))
    logits = model(x)
    for h in handles:
        h.remove()
    outputs["logits"] = _out(logits)
    if "y" in inputs and "dy" in inputs:
        raise BridgeError('give "y" (cross-entropy gradients) or "dy" (a VJP), not both')
    if "y" in inputs:
        used.add("y")
        loss = F.cross_entropy(logits, _labels(inputs["y"]),
                               label_smoothing=float(spec.get("label_smoothing", 0)))
        outputs["loss"] = _out(loss)
        _grads(loss, model, x, "grad.", outputs, bool(spec.get("param_grads", True)))
    elif "dy" in inputs:
        used.add("dy")
        dy = _to_torch(inputs["dy"], fdt)
        if tuple(dy.shape) != tuple(logits.shape):
            raise BridgeError(f"dy has shape {list(dy.shape)}, logits are {list(logits.shape)}")
        _grads((logits * dy).sum(), model, x, "grad.", outputs,
               bool(spec.get("param_grads", True)))
    if "tx" in inputs:
        used.add("tx")
        tx = _to_torch(inputs["tx"], fdt)
        if tuple(tx.shape) != tuple(x.shape):
            raise BridgeError(f"tx has shape {list(tx.shape)}, x is {list(x.shape)}")
        # J tx by the double-vjp trick: g(w) = J^T w is linear in w, and d<g(w), tx>/dw = J tx.
        w = torch.zeros_like(logits, requires_grad=True)
        (g,) = torch.autograd.grad(logits, x, grad_outputs=w, create_graph=True)
        (jvp,) = torch.autograd.grad(g, w, grad_outputs=tx)
        outputs["jvp"] = _out(jvp)
    if spec.get("return_state"):
        for k, t in model.state_dict().items():
            outputs["state." + k] = _out(t)
    return outputs


def op_jacobian_penalty(spec, inputs, used):
    fdt = _float_dtype(spec)
    model, outputs = _build(spec, inputs, used)
    _set_mode(model, spec, "eval")
    _set_masks(model, inputs, used, fdt)
    if "x" not in inputs:
        raise BridgeError('jacobian_penalty needs input "x"')
    used.add("x")
    x = _to_torch(inputs["x"], fdt).requires_grad_(True)
    v = None
    if "v" in inputs:
        used.add("v")
        v = _to_torch(inputs["v"], fdt)
    torch.manual_seed(int(spec.get("seed", 0)))
    logits = model(x)
    per_sample = _jr(model, logits, x, v, spec.get("nproj"))
    jr = per_sample.mean()
    outputs["logits"] = _out(logits)
    outputs["jr_per_sample"] = _out(per_sample)
    outputs["jr"] = _out(jr)
    _grads(jr, model, x, "jr_grad.", outputs)
    if "y" in inputs:
        used.add("y")
        ce = F.cross_entropy(logits, _labels(inputs["y"]),
                             label_smoothing=float(spec.get("label_smoothing", 0)))
        loss = ce + float(spec.get("lambda", 0)) / 2 * jr
        outputs["ce"] = _out(ce)
        outputs["loss"] = _out(loss)
        _grads(loss, model, x, "grad.", outputs)
    return outputs


def op_train_sgd(spec, inputs, used):
    fdt = _float_dtype(spec)
    model, outputs = _build(spec, inputs, used)
    _set_mode(model, spec, "train")
    for k in ("x", "y"):
        if k not in inputs:
            raise BridgeError(f'train_sgd needs input "{k}" (S batches: x (S, B, ...), y (S, B))')
        used.add(k)
    xs, ys = inputs["x"], inputs["y"]
    if xs.ndim < 2 or ys.ndim != 2 or xs.shape[:2] != ys.shape:
        raise BridgeError(f"train_sgd: x {list(xs.shape)} and y {list(ys.shape)} must be "
                          f"(S, B, ...) and (S, B)")
    if "lr" not in spec:
        raise BridgeError('train_sgd needs "lr"')
    steps = int(spec.get("steps", xs.shape[0]))
    wd = float(spec.get("weight_decay", 0))
    no_decay = tuple(spec.get("no_decay", []))
    params = _named_params(model)
    # str.endswith(()) is False, so an empty no_decay leaves every parameter decayed.
    groups = [{"params": [p for k, p in params if not k.endswith(no_decay)], "weight_decay": wd},
              {"params": [p for k, p in params if k.endswith(no_decay)], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.SGD(groups, lr=float(spec["lr"]), momentum=float(spec.get("momentum", 0)),
                          dampening=float(spec.get("dampening", 0)),
                          nesterov=bool(spec.get("nesterov", False)))
    jr_lambda = float(spec.get("jr_lambda", 0))
    vs = None
    if "v" in inputs:
        used.add("v")
        vs = _to_torch(inputs["v"], fdt)
    ls = float(spec.get("label_smoothing", 0))
    adv = spec.get("adv")
    if adv is not None:
        import torch_attacks  # noqa: E402 (it imports this module: only when needed)
        if not isinstance(adv, dict) or adv.get("attack") not in ("pgd", "fgsm"):
            raise BridgeError(f'train_sgd: adv.attack must be "pgd" or "fgsm", got {adv!r}')
    torch.manual_seed(int(spec.get("seed", 0)))
    losses, ce_losses = [], []
    trajectory = bool(spec.get("trajectory", False))
    theta0 = {k: p.detach().double().clone() for k, p in params}
    traj = {k: [] for k, _ in params}
    for step in range(steps):
        i = step % xs.shape[0]
        _set_masks(model, inputs, used, fdt, step)
        x = _to_torch(xs[i], fdt)
        y = _labels(ys[i])
        if adv is not None:
            # Python's round() halves to even, as JavaScript's Math.round does not; the
            # tests use ratios where ratio B is not a half.
            k = round(float(adv.get("ratio", 1)) * x.shape[0])
            model.eval()
            if adv["attack"] == "pgd":
                xa = torch_attacks.pgd(model, x, y, float(adv["eps"]), float(adv["alpha"]),
                                       int(adv["steps"]))
            else:
                xa = torch_attacks.fgsm(model, x, y, float(adv["eps"]))
            _set_mode(model, spec, "train")
            x = torch.cat([xa[:k].detach(), x[k:]])
        x = x.requires_grad_(jr_lambda != 0)
        logits = model(x)
        ce = F.cross_entropy(logits, y, label_smoothing=ls)
        loss = ce
        if jr_lambda != 0:
            v = vs[step % vs.shape[0]] if vs is not None else None
            loss = ce + jr_lambda / 2 * _jr(model, logits, x, v, spec.get("nproj")).mean()
        opt.zero_grad()
        loss.backward()
        if trajectory:
            for k, p in params:
                th = p.detach().double()
                traj[k].append([float((th * th).sum()), float((p.grad.double() ** 2).sum()),
                                float(((th - theta0[k]) ** 2).sum())])
        opt.step()
        losses.append(loss.item())
        ce_losses.append(ce.item())
    np_dt = np.float64 if fdt == torch.float64 else np.float32
    outputs["losses"] = np.array(losses, dtype=np_dt)
    outputs["ce_losses"] = np.array(ce_losses, dtype=np_dt)
    for k, t in model.state_dict().items():
        outputs["state." + k] = _out(t)
    if trajectory:
        for k, rows in traj.items():
            outputs["traj." + k] = np.array(rows, dtype=np.float64).reshape(steps, 3)
    return outputs


OPS = {"forward": op_forward, "jacobian_penalty": op_jacobian_penalty, "train_sgd": op_train_sgd}


def run(spec, inputs, metadata):
    """Runs one spec on {name: ndarray}; returns ({name: ndarray}, metadata)."""
    if not isinstance(spec, dict):
        raise BridgeError("spec must be a JSON object")
    op = spec.get("op")
    if op == "identity":
        return dict(inputs), metadata
    if op not in OPS:
        raise BridgeError(f"unknown op {op!r} (known: identity, {', '.join(OPS)})")
    if torch is None:
        raise BridgeError(f"/usr/bin/python3 cannot import torch ({_TORCH_ERROR}); "
                          f"install it with apt-get install python3-torch")
    used = set()
    try:
        outputs = OPS[op](spec, inputs, used)
    except torch_models.SpecError as e:  # a bad spec or dropout mask in a ModelSpec twin
        raise BridgeError(str(e)) from None
    unused = sorted(set(inputs) - used)
    if unused:
        raise BridgeError(f"{op}: unused input tensors {unused} (misspelt parameter names?)")
    return outputs, {"op": op, "torch": torch.__version__}


def run_files(in_path, out_path, spec_text=None):
    """Reads in_path, runs the spec (text, or the input's metadata), writes out_path."""
    inputs, metadata = read_safetensors(in_path)
    if spec_text is None:
        if "spec" not in (metadata or {}):
            raise BridgeError('no spec: pass --spec/--spec-json or put it in __metadata__["spec"]')
        spec_text = metadata["spec"]
    try:
        spec = json.loads(spec_text)
    except json.JSONDecodeError as e:
        raise BridgeError(f"spec is not valid JSON: {e}") from None
    outputs, out_meta = run(spec, inputs, metadata)
    write_safetensors(out_path, outputs, out_meta)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="?", help="input safetensors file")
    ap.add_argument("outputs", nargs="?", help="output safetensors file")
    ap.add_argument("--spec", help="JSON spec file")
    ap.add_argument("--spec-json", help="JSON spec string")
    ap.add_argument("--jobs", help='JSON file: [{"inputs": path, "outputs": path, "spec"?: {...}}, '
                                   '...], run in one process (PyTorch loads once)')
    args = ap.parse_args(argv)
    if args.jobs is None:
        if args.inputs is None or args.outputs is None:
            ap.error("give INPUTS and OUTPUTS, or --jobs")
        try:
            text = args.spec_json
            if text is None and args.spec is not None:
                with open(args.spec, encoding="utf-8") as f:
                    text = f.read()
            run_files(args.inputs, args.outputs, text)
        except BridgeError as e:
            print(f"torch_bridge: {e}", file=sys.stderr)
            return 2
        return 0
    # Batch mode: a failing job is reported as "torch_bridge: job <i>: <message>"
    # and writes no output; the others still run.
    with open(args.jobs, encoding="utf-8") as f:
        jobs = json.load(f)
    failed = False
    for i, job in enumerate(jobs):
        try:
            spec = job.get("spec")
            run_files(job["inputs"], job["outputs"], None if spec is None else json.dumps(spec))
        except BridgeError as e:
            print(f"torch_bridge: job {i}: {e}", file=sys.stderr)
            failed = True
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
