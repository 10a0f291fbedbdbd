#!/usr/bin/python3
"""Writes torch_conv.json: PyTorch's conv3d forward, input and weight gradients and
conv_transpose3d on small random cases, the golden values for fallback/kern's
TestAgainstTorch.

Run from the repository root: /usr/bin/python3 fallback/kern/testdata/gen_fixtures.py
(Debian's python3-torch; the output is deterministic for a given torch build).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(7)

CASES = [
    # name, N, Ci, Co, in (D,H,W), kernel, stride, pad
    ("3to5_k3s1p1", 2, 3, 5, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ("4to3_k4s2p1", 1, 4, 3, (7, 6, 9), (4, 4, 4), (2, 2, 2), (1, 1, 1)),
    ("2to3_k1s2p0", 2, 2, 3, (4, 5, 6), (1, 1, 1), (2, 2, 2), (0, 0, 0)),
    ("3to2_mixed", 1, 3, 2, (5, 7, 8), (1, 3, 4), (1, 2, 2), (0, 1, 1)),
]


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def main():
    out = []
    for name, n, ci, co, ins, k, s, p in CASES:
        x = torch.randn(n, ci, *ins, requires_grad=True)
        w = torch.randn(co, ci, *k, requires_grad=True)
        b = torch.randn(co, requires_grad=True)
        y = F.conv3d(x, w, b, stride=s, padding=p)
        dy = torch.randn_like(y)
        dx, dw, db = torch.autograd.grad(y, (x, w, b), dy)
        out.append({
            "name": name, "n": n, "ci": ci, "co": co, "in": list(ins), "k": list(k),
            "stride": list(s), "pad": list(p), "out": list(y.shape[2:]),
            "x": flat(x), "w": flat(w), "b": flat(b), "y": flat(y), "dy": flat(dy),
            "dx": flat(dx), "dw": flat(dw), "db": flat(db),
        })
    # ConvTranspose3d (the autoencoder's decoder step) is Conv3dBackwardData run forwards:
    # its weight (Cin, Cout, k…) plays w with Co = Cin.
    h = torch.randn(1, 4, 3, 4, 5)
    wt = torch.randn(4, 3, 4, 4, 4)
    o = F.conv_transpose3d(h, wt, stride=2, padding=1)
    out.append({
        "name": "convtranspose_4to3_k4s2p1", "n": 1, "ci": 3, "co": 4,
        "in": list(o.shape[2:]), "k": [4, 4, 4], "stride": [2, 2, 2], "pad": [1, 1, 1],
        "out": [3, 4, 5], "dy": flat(h), "w": flat(wt), "dx": flat(o),
    })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_conv.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": out}, f)


if __name__ == "__main__":
    main()
