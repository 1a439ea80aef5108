#!/usr/bin/python3
"""torch_models: the PyTorch twins of regula's models (src/models), from the same JSON spec.

Each ``ModelSpec`` kind ("mlp", "lenet", "ddnet", "resnet18", "sequential"; see src/models/spec.ts for the
fields and their defaults) becomes a ``torch.nn.Module`` whose ``state_dict`` keys, shapes and
order equal the names regula's ``model.params()`` gives, so a safetensors checkpoint written by
regula (src/io/checkpoint.ts; ``num_batches_tracked`` as an int64 scalar, as torch keeps it)
loads with ``load_state_dict(strict=True)``::

    /usr/bin/python3 -c 'import torch_models as tm; print(tm.build_model({"kind": "lenet"}))'
    /usr/bin/python3 tools/torch_models.py '{"kind": "resnet18"}'   # prints the state_dict keys
    /usr/bin/python3 tools/torch_models.py --checkpoint run.safetensors   # loads, prints keys

``load_checkpoint(path)`` rebuilds a model from a regula checkpoint (spec in the metadata,
weights loaded strictly).

Layers without state are attributes too (``act1``, ``pool1``, ``drop1``, ``normalize``); they
add no ``state_dict`` entries. ``Normalize`` keeps its mean and std as non-persistent buffers.

Dropout layers are ``MaskedDropout``: with ``.mask`` (a 0/1 keep mask shaped like the input)
set, training mode computes ``x * mask / (1 - p)`` so a test can replay regula's mask; without
one it is ``F.dropout``. ``model.dropouts`` maps their names ("drop1") to the modules.

ResNet-18 is torchvision's ``resnet18`` with the CIFAR stem (3x3 conv1, stride 1, no max-pool)
and torchvision's initialization; its ``BasicBlock`` has torchvision's attribute names.
"""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpecError(Exception):
    """A bad model spec."""


class Normalize(nn.Module):
    """(x - mean[c]) / std[c] on axis 1; no state_dict entries."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float64), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float64), persistent=False)

    def forward(self, x):
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - self.mean.to(x.dtype).view(shape)) / self.std.to(x.dtype).view(shape)


class MaskedDropout(nn.Module):
    """Inverted dropout that replays a given keep mask (``.mask``) when one is set."""

    def __init__(self, p, label):
        super().__init__()
        self.p, self.label, self.mask = p, label, None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if self.mask is None:
            return F.dropout(x, self.p, True)
        if tuple(self.mask.shape) != tuple(x.shape):
            raise SpecError(f"dropout {self.label}: mask {list(self.mask.shape)} does not match "
                            f"its input {list(x.shape)}")
        return x * self.mask / (1 - self.p)


def _activation(name):
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
            "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus}[name]()


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (expansion 1) with its attribute names."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class _Chain(nn.Module):
    """Runs ``self.order`` (attribute names) in sequence."""

    def _setup(self, spec, layers):
        self.spec, self.order, self.dropouts = spec, [], {}
        for name, m in layers:
            self.add_module(name, m)
            self.order.append(name)
            if isinstance(m, MaskedDropout):
                self.dropouts[name] = m

    def forward(self, x):
        for name in self.order:
            x = getattr(self, name)(x)
        return x


def _normalize(spec):
    n = spec.get("normalize")
    return [("normalize", Normalize(n["mean"], n["std"]))] if n else []


def _drop(name, p):
    return [(name, MaskedDropout(p, name))] if p > 0 else []


class MLP(_Chain):
    """fc1, act1, [drop1], fc2, ... on the flattened input."""

    def __init__(self, spec):
        super().__init__()
        sizes = [spec["inputs"], *spec.get("hidden", []), spec["classes"]]
        act, p, bias = spec.get("activation", "relu"), spec.get("dropout", 0), spec.get("bias", True)
        layers = _normalize(spec) + [("flatten", nn.Flatten())]
        for i in range(len(sizes) - 1):
            layers.append((f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1], bias=bias)))
            if i + 2 < len(sizes):
                layers.append((f"act{i + 1}", _activation(act)))
                layers += _drop(f"drop{i + 1}", p)
        self._setup(spec, layers)


class LeNet(_Chain):
    """LeNet-5 (max-pools; dropout after the activations of fc1 and fc2)."""

    def __init__(self, spec):
        super().__init__()
        act, p = spec.get("activation", "tanh"), spec.get("dropout", 0)
        s = spec.get("inputSize", 28)
        q = (s // 2 - 4) // 2
        layers = _normalize(spec) + [
            ("conv1", nn.Conv2d(spec.get("inChannels", 1), 6, 5, padding=2)),
            ("act1", _activation(act)), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(6, 16, 5)), ("act2", _activation(act)), ("pool2", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(16 * q * q, 120)), ("act3", _activation(act)), *_drop("drop1", p),
            ("fc2", nn.Linear(120, 84)), ("act4", _activation(act)), *_drop("drop2", p),
            ("fc3", nn.Linear(84, spec.get("classes", 10))),
        ]
        self._setup(spec, layers)


class DDNet(_Chain):
    """Hoffman, Roberts & Yaida 2019's CIFAR-10 network."""

    def __init__(self, spec):
        super().__init__()
        p, s = spec.get("dropout", 0.5), spec.get("inputSize", 32)
        q = ((s - 4) // 2 - 4) // 2
        layers = _normalize(spec) + [
            ("conv1", nn.Conv2d(spec.get("inChannels", 3), 64, 3)), ("act1", nn.ReLU()),
            ("conv2", nn.Conv2d(64, 64, 3)), ("act2", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv3", nn.Conv2d(64, 128, 3)), ("act3", nn.ReLU()),
            ("conv4", nn.Conv2d(128, 128, 3)), ("act4", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(128 * q * q, 256)), ("act5", nn.ReLU()), *_drop("drop1", p),
            ("fc2", nn.Linear(256, 256)), ("act6", nn.ReLU()), *_drop("drop2", p),
            ("fc3", nn.Linear(256, spec.get("classes", 10))),
        ]
        self._setup(spec, layers)


class ResNet18(_Chain):
    """torchvision resnet18 with the CIFAR stem; torchvision's init (ResNet.__init__)."""

    def __init__(self, spec):
        super().__init__()
        s = spec.get("inputSize", 32)
        stages, c = [], 64
        for i, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            stages.append((f"layer{i + 1}", nn.Sequential(BasicBlock(c, planes, stride),
                                                          BasicBlock(planes, planes))))
            c = planes
        layers = _normalize(spec) + [
            ("conv1", nn.Conv2d(spec.get("inChannels", 3), 64, 3, padding=1, bias=False)),
            ("bn1", nn.BatchNorm2d(64)), ("relu", nn.ReLU()), *stages,
            ("avgpool", nn.AvgPool2d(s // 8)), ("flatten", nn.Flatten()),
            ("fc", nn.Linear(512, spec.get("classes", 10))),
        ]
        self._setup(spec, layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def Sequential(spec):
    """A "sequential" spec: its layers (tools/torch_bridge.py's format, names defaulting to the
    index as src/models/layer_spec.ts fills them in), after the optional input normalization."""
    import torch_bridge  # imports this module; lazily, to avoid the cycle

    layers = [dict(l, name=l.get("name", str(i))) for i, l in enumerate(spec["layers"])]
    n = spec.get("normalize")
    if n:
        layers = [{"type": "normalize", "mean": n["mean"], "std": n["std"]}] + layers
    try:
        net = torch_bridge.Net({"layers": layers})
    except torch_bridge.BridgeError as e:
        raise SpecError(f"sequential spec: {e}") from None
    net.spec = spec
    return net


KINDS = {"mlp": MLP, "lenet": LeNet, "ddnet": DDNet, "resnet18": ResNet18,
         "sequential": Sequential}


def build_model(spec):
    """A torch module for a regula ModelSpec (a dict or a JSON string), in training mode."""
    if isinstance(spec, str):
        spec = json.loads(spec)
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise SpecError(f"model spec needs \"kind\" in {sorted(KINDS)}, got {spec!r}")
    try:
        return KINDS[spec["kind"]](spec)
    except (KeyError, TypeError, ValueError) as e:
        raise SpecError(f"model spec {spec!r}: {e}") from None


def load_checkpoint(path, dtype=torch.float32):
    """Rebuilds a model from a regula checkpoint (src/io/checkpoint.ts): the spec from
    ``__metadata__["model"]``, the tensors through ``load_state_dict(strict=True)``.
    Returns (model in eval mode, metadata with each value parsed from JSON)."""
    import torch_bridge  # the safetensors reader (numpy only); imports this module lazily

    tensors, raw = torch_bridge.read_safetensors(path)
    metadata = {}
    for k, v in (raw or {}).items():
        try:
            metadata[k] = json.loads(v)
        except json.JSONDecodeError:
            metadata[k] = v
    if "model" not in metadata:
        raise SpecError(f"{path}: no model spec in __metadata__[\"model\"]")
    model = build_model(metadata["model"]).to(dtype)
    state = {k: torch.from_numpy(a) for k, a in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), metadata


def main(argv):
    if len(argv) > 2 and argv[1] == "--checkpoint":
        model, _ = load_checkpoint(argv[2])
    else:
        model = build_model(argv[1] if len(argv) > 1 else sys.stdin.read())
    for k, t in model.state_dict().items():
        print(k, list(t.shape))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
