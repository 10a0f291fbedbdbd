"""Reads checkpoints that latentad wrote and loads them into the PyTorch modules strictly.

Run by TestPyTorchInterop (checkpoint_interop_test.go) as
    /usr/bin/python3 checkpoint/testdata/interop.py CASES.json
CASES.json: [{"path", "arch": "velocity"|"ae", "config": {...}, "ref": "<file>.f32", "keys": [...],
"shapes": [...], "optim_ref": "<file>.f32" or null, "kind"}]. Prints "ok <n>" on success.

Debian ships no python3-safetensors, so read_safetensors below (json + numpy → torch.from_numpy)
stands in for safetensors.torch.load_file: it follows the format's specification and accepts
only F32, which is all latentad writes.
"""
import json
import os
import sys

import numpy as np
import torch

# The PyTorch twins of latentad's networks: pyref/seed.py, the repository's one reference.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pyref"))
from seed import LatentVelocityEstimator, Tiny3DAE  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def read_ref(dirname, ref, keys, shapes):
    flat = np.fromfile(os.path.join(dirname, ref), dtype="<f4")
    out, off = {}, 0
    for k, s in zip(keys, shapes):
        n = int(np.prod(s))
        out[k] = torch.from_numpy(flat[off:off + n].reshape(s).copy())
        off += n
    assert off == flat.size, (ref, off, flat.size)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    cases = json.load(open(sys.argv[1]))
    for c in cases:
        sd, meta = read_safetensors(c["path"])
        doc = json.loads(meta["latentad"])
        assert doc["format_version"] == 1 and doc["kind"] == c["kind"], doc
        cfg = c["config"]
        if c["arch"] == "velocity":
            model = LatentVelocityEstimator(**cfg)
        else:
            model = Tiny3DAE(base=cfg["base"])
        model.load_state_dict(sd, strict=True)  # raises on missing, unexpected or mis-shaped keys
        want = read_ref(here, c["ref"], c["keys"], c["shapes"])
        got = model.state_dict()
        assert list(got.keys()) == list(want.keys()), (list(got.keys()), list(want.keys()))
        for k in want:
            assert torch.equal(got[k], want[k]), k
        if c["arch"] == "velocity":
            z = torch.randn(2, cfg["in_channels"], 2, 3, 4)
            v = model(z, torch.tensor([0.25, 0.75]))
            assert v.shape == z.shape and torch.isfinite(v).all()
        if c.get("optim_ref"):
            opt_path = c["path"][:-len(".safetensors")] + ".optim.safetensors"
            osd, ometa = read_safetensors(opt_path)
            odoc = json.loads(ometa["latentad_optim"])
            assert odoc["save_id"] == doc["optim"]["save_id"], (odoc, doc)
            names = list(want.keys())
            okeys = ["exp_avg." + k for k in names] + ["exp_avg_sq." + k for k in names]
            owant = read_ref(here, c["optim_ref"], okeys, [list(want[k].shape) for k in names] * 2)
            assert set(osd.keys()) == set(okeys), sorted(osd.keys())
            for k in okeys:
                assert torch.equal(osd[k], owant[k]), k
            # The saved moments drive a real Adam: load them into torch.optim.Adam and step once.
            opt = torch.optim.Adam(model.parameters(), lr=odoc["lr"], betas=tuple(odoc["betas"]), eps=odoc["eps"])
            state = {i: {"step": torch.tensor(float(odoc["step"])), "exp_avg": osd["exp_avg." + k],
                         "exp_avg_sq": osd["exp_avg_sq." + k]} for i, k in enumerate(names)}
            opt.load_state_dict({"state": state, "param_groups": [dict(opt.state_dict()["param_groups"][0])]})
            sum((p ** 2).sum() for p in model.parameters()).backward()
            opt.step()
    print("ok", len(cases))


if __name__ == "__main__":
    main()
