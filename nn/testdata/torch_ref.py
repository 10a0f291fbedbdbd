#!/usr/bin/env python3
"""PyTorch reference for nn's interop test (nn/interop_test.go runs it; no need to run it by hand).

    /usr/bin/python3 nn/testdata/torch_ref.py IN.st OUT.st

IN.st (written by the Go test, same layout as the golden fixtures) holds a model's state dict
under "param/<key>", its inputs under "in/…", and metadata "model" (velocity|ae) and "config".
The script loads the state dict into the seed's model with strict key checking, runs it in
float64, takes the MSE loss against "in/target" and writes the output(s) and every parameter's
gradient to OUT.st.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

from gen_golden import LatentVelocityEstimator, Tiny3DAE, write


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for k, e in header.items():
        assert e["dtype"] == "F32", k
        a, b = e["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(e["shape"]).copy())
    return out, meta


def main(src, dst):
    torch.set_num_threads(1)
    tensors, meta = read(src)
    cfg = json.loads(meta["config"])
    sd = {k[len("param/"):]: v.double() for k, v in tensors.items() if k.startswith("param/")}
    result = {}
    if meta["model"] == "velocity":
        model = LatentVelocityEstimator(**cfg).double()
        model.load_state_dict(sd, strict=True)
        out = model(tensors["in/z"].double(), tensors["in/t"].double())
        result["out/v"] = ("F32", out.detach())
    else:
        model = Tiny3DAE(cfg["base"]).double()
        model.load_state_dict(sd, strict=True)
        x = tensors["in/x"].double()
        result["out/latent"] = ("F32", model.enc(x).detach())
        out = model(x)
        result["out/recon"] = ("F32", out.detach())
    loss = F.mse_loss(out, tensors["in/target"].double())
    loss.backward()
    result.update({"grad/" + k: ("F32", p.grad) for k, p in model.named_parameters()})
    write(dst, result, {"loss": repr(float(loss)), "keys": [k for k, _ in model.named_parameters()]})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
