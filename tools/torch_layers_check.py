#!/usr/bin/python3
"""Cross-check oracle: PyTorch 1.13 torch.nn layers, forward and backward.

Usage: /usr/bin/python3 tools/torch_layers_check.py CASES.json

CASES.json holds {"cases": [case, ...]}; each case runs the torch.nn module named by "op" in
float64 on the CPU (the float32 inputs are exact in float64), seeds its backward with "dy",
and the script prints {"results": [result, ...]} (same order) on stdout. tests/torch_layers_test.ts
runs it through Deno.Command and compares with the GPU layers. Tensors are flat row-major lists.

Cases:
  conv2d      {x, x_shape [B,C,H,W], weight, w_shape [O,C,kh,kw], bias | null, stride, padding, dy}
              -> {y, y_shape, dx, dw, db | null}
  max_pool2d  {x, x_shape, kernel, stride, padding, dy}
              -> {y, y_shape, dx, indices}   (indices from return_indices=True)
  avg_pool2d  {x, x_shape, kernel, stride, padding, count_include_pad, dy}
              -> {y, y_shape, dx}
  linear      {x, x_shape [B,in], weight, w_shape [out,in], bias | null, dy}
              -> {y, y_shape, dx, dw, db | null}
"""

import json
import sys

import torch

torch.set_default_dtype(torch.float64)


def tensor(data, shape, grad=False):
    return torch.tensor(data, dtype=torch.float64).reshape(shape).requires_grad_(grad)


def flat(t):
    return t.detach().reshape(-1).tolist()


def with_params(module, case):
    with torch.no_grad():
        module.weight.copy_(tensor(case["weight"], case["w_shape"]))
        if case.get("bias") is not None:
            module.bias.copy_(tensor(case["bias"], [case["w_shape"][0]]))
    return module


def run(case):
    op = case["op"]
    x = tensor(case["x"], case["x_shape"], grad=True)
    out = {}
    if op == "conv2d":
        o, c, kh, kw = case["w_shape"]
        m = with_params(torch.nn.Conv2d(c, o, (kh, kw), stride=tuple(case["stride"]),
                                        padding=tuple(case["padding"]),
                                        bias=case.get("bias") is not None), case)
        y = m(x)
    elif op == "linear":
        o, i = case["w_shape"]
        m = with_params(torch.nn.Linear(i, o, bias=case.get("bias") is not None), case)
        y = m(x)
    elif op == "max_pool2d":
        m = torch.nn.MaxPool2d(tuple(case["kernel"]), stride=tuple(case["stride"]),
                               padding=tuple(case["padding"]), return_indices=True)
        y, idx = m(x)
        out["indices"] = flat(idx)
    elif op == "avg_pool2d":
        m = torch.nn.AvgPool2d(tuple(case["kernel"]), stride=tuple(case["stride"]),
                               padding=tuple(case["padding"]),
                               count_include_pad=case.get("count_include_pad", True))
        y = m(x)
    else:
        raise ValueError(f"unknown op {op!r}")
    y.backward(tensor(case["dy"], list(y.shape)))
    out.update(y=flat(y), y_shape=list(y.shape), dx=flat(x.grad))
    if op in ("conv2d", "linear"):
        out["dw"] = flat(m.weight.grad)
        out["db"] = flat(m.bias.grad) if m.bias is not None else None
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: torch_layers_check.py CASES.json")
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    json.dump({"results": [run(c) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
