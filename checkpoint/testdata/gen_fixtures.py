"""Writes the .pth fixtures of package checkpoint and the values the Go tests expect.

Run with Debian's PyTorch, from any directory (or `make fixtures`):
    /usr/bin/python3 checkpoint/testdata/gen_fixtures.py
It rewrites checkpoint/testdata/*.pth, *.f32, dtypes.safetensors and expected.json (about 700 kB).
The legacy-format files change on every run (their storage keys are Python object ids); their
values do not.

The checkpoints follow the seed's torch.save calls: {"model": state_dict, "args": ..., "epoch",
"loss", "optimizer": Adam.state_dict(), "noise_schedule": ... (DDPM)} in the zip format and the
legacy format (_use_new_zipfile_serialization=False), bare state_dicts, argparse.Namespace args,
numpy scalars and 0-d tensors, and views (transposed, offset, strided) of shared storages.
Expected tensor values go to raw little-endian float32 files (<ref>.f32: the tensors of one
reference, concatenated in the listed key order), written by numpy independently of torch's
serialisation, so the Go reader is checked against values and not against itself.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

# The PyTorch twins of latentad's networks: pyref/seed.py, the repository's one reference.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pyref"))
from seed import LatentVelocityEstimator, Tiny3DAE  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))


def save(obj, name, legacy=False):
    path = os.path.join(OUT, name)
    if legacy:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(obj, path)


def write_ref(name, tensors):
    """tensors: list of (key, tensor). Writes <name>.f32 and returns keys and shapes."""
    with open(os.path.join(OUT, name + ".f32"), "wb") as f:
        for _, t in tensors:
            f.write(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())
    return {"keys": [k for k, _ in tensors], "shapes": [list(t.shape) for _, t in tensors],
            "file": name + ".f32"}


def adam_steps(model, n, seed):
    """n Adam steps on a made-up loss, so that exp_avg and exp_avg_sq are not zero."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        loss = sum(((p - torch.randn(p.shape, generator=g)) ** 2).mean() for p in model.parameters())
        loss.backward()
        opt.step()
    return opt


def main():
    torch.manual_seed(0)
    refs, files = {}, {}

    # The tiny velocity model: in 4, base 8, time 8, one block; two Adam steps.
    fm = LatentVelocityEstimator(in_channels=4, base_channels=8, time_dim=8, num_res_blocks=1)
    opt = adam_steps(fm, 2, seed=1)
    sd = fm.state_dict()
    refs["fm"] = write_ref("fm", list(sd.items()))
    names = list(sd.keys())
    ost = opt.state_dict()
    # state is keyed by the index of the parameter in model.parameters(), which is state_dict order.
    refs["fm_optim"] = write_ref(
        "fm_optim",
        [("exp_avg." + names[i], ost["state"][i]["exp_avg"]) for i in range(len(names))] +
        [("exp_avg_sq." + names[i], ost["state"][i]["exp_avg_sq"]) for i in range(len(names))])
    step = int(ost["state"][0]["step"])
    fm_config = {"in_channels": 4, "base_channels": 8, "time_dim": 8, "num_res_blocks": 1}
    fm_args = {"latents": "lat.npy", "base_channels": 8, "time_dim": 8, "num_res_blocks": 1,
               "epochs": 10, "batch_size": 4, "lr": 1e-4, "seed": 42, "out_dir": "runs/fm",
               "save_every": 10, "expected_shape": [128, 128, 64], "resume": None, "amp": False}
    optim_exp = {"step": step, "ref": "fm_optim", "lr": 1e-4}

    ck = {"model": sd, "args": dict(fm_args), "epoch": 7, "loss": 0.123456789, "optimizer": ost}
    for name, legacy in (("fm_zip.pth", False), ("fm_legacy.pth", True)):
        save(ck, name, legacy)
        files[name] = {"ref": "fm", "kind": "fm", "config": fm_config, "epoch": 7, "loss": 0.123456789,
                       "args": fm_args, "optim": optim_exp}

    # Bare state_dicts: nothing says whether the model is flow matching or DDPM.
    for name, legacy in (("bare_zip.pth", False), ("bare_legacy.pth", True)):
        save(sd, name, legacy)
        files[name] = {"ref": "fm", "kind": "", "config": fm_config, "epoch": 0, "loss": 0.0,
                       "args": None, "optim": None}

    # argparse.Namespace args holding numpy scalars; numpy epoch and loss.
    ns = argparse.Namespace(latents="lat.npy", base_channels=8, lr=np.float64(2.5e-4),
                            seed=np.int64(42), schedule=None, expected_shape=[16, 16, 16], flag=True)
    save({"model": sd, "args": ns, "epoch": np.int64(3), "loss": np.float32(0.1)}, "ns_numpy.pth")
    files["ns_numpy.pth"] = {"ref": "fm", "kind": "fm", "config": fm_config, "epoch": 3,
                             "loss": float(np.float32(0.1)),
                             "args": {"latents": "lat.npy", "base_channels": 8, "lr": 2.5e-4, "seed": 42,
                                      "schedule": None, "expected_shape": [16, 16, 16], "flag": True},
                             "optim": None}

    # DDPM as the seed saves it: noise_schedule, a 0-d tensor loss.
    ddpm_args = dict(fm_args, timesteps=1000, schedule_type="cosine")
    save({"model": sd, "args": ddpm_args, "epoch": 12, "loss": torch.tensor(0.375),
          "noise_schedule": {"timesteps": 1000, "schedule_type": "cosine"}}, "ddpm_zip.pth")
    files["ddpm_zip.pth"] = {"ref": "fm", "kind": "ddpm", "config": fm_config, "epoch": 12, "loss": 0.375,
                             "args": ddpm_args, "schedule": {"timesteps": 1000, "type": "cosine"},
                             "optim": None}
    # A DDPM checkpoint without noise_schedule: the args say it (legacy format, numpy loss).
    ddpm2_args = dict(fm_args, timesteps=50, schedule_type="linear")
    save({"model": sd, "args": ddpm2_args, "epoch": 1, "loss": np.float64(0.5)}, "ddpm_args_legacy.pth",
         legacy=True)
    files["ddpm_args_legacy.pth"] = {"ref": "fm", "kind": "ddpm", "config": fm_config, "epoch": 1,
                                     "loss": 0.5, "args": ddpm2_args,
                                     "schedule": {"timesteps": 50, "type": "linear"}, "optim": None}

    # The tiny autoencoder, base 2.
    torch.manual_seed(1)
    ae = Tiny3DAE(base=2)
    asd = ae.state_dict()
    refs["ae"] = write_ref("ae", list(asd.items()))
    ae_config = {"in_channels": 1, "base": 2}
    ae_args = {"normal_root": "data/normal", "epochs": 20, "batch_size": 2, "lr": 1e-3}
    save({"model": asd, "args": ae_args}, "ae_zip.pth")
    files["ae_zip.pth"] = {"ref": "ae", "kind": "ae", "config": ae_config, "epoch": 0, "loss": 0.0,
                           "args": ae_args, "optim": None}
    save(asd, "ae_bare_legacy.pth", legacy=True)
    files["ae_bare_legacy.pth"] = {"ref": "ae", "kind": "ae", "config": ae_config, "epoch": 0, "loss": 0.0,
                                   "args": None, "optim": None}

    # Views of shared storages, and dtypes other than float32.
    g = torch.Generator().manual_seed(2)
    base = torch.randn(5, 3, generator=g)
    big = torch.randn(12, generator=g)
    wide = torch.randn(3, 8, 2, generator=g)
    strided = [
        ("transposed", base.t()),              # strides (1, 3)
        ("offset", big[3:7]),                  # storage offset 3
        ("every_other", wide[:, ::2, :]),      # strides (16, 4, 1)
        ("whole", big),                        # shares the storage of "offset"
        ("expanded", big[:1].expand(3, 2)),    # stride 0
        ("float64", torch.randn(2, 3, generator=g, dtype=torch.float64)),
        ("float16", torch.randn(4, generator=g).to(torch.float16)),
        ("scalar", torch.tensor(2.5)),
    ]
    refs["strided"] = write_ref("strided", strided)
    for name, legacy in (("strided_zip.pth", False), ("strided_legacy.pth", True)):
        save({"model": dict(strided)}, name, legacy)
        files[name] = {"ref": "strided", "kind": "", "config": {}, "epoch": 0, "loss": 0.0,
                       "args": None, "optim": None}

    # A plain safetensors file (no latentad metadata) in the dtypes latentad converts, written
    # with json + numpy as the format's specification says.
    h = torch.randn(6, generator=g)
    dtypes = [("f32", h.reshape(2, 3), "F32"), ("f64", h.double(), "F64"), ("f16", h.half(), "F16"),
              ("bf16", h.bfloat16(), "BF16")]
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t, dt in dtypes:
        raw = t.contiguous().view(torch.int16).numpy().tobytes() if dt == "BF16" else t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(os.path.join(OUT, "dtypes.safetensors"), "wb") as f:
        f.write(len(hb).to_bytes(8, "little") + hb + b"".join(blobs))
    refs["dtypes"] = write_ref("dtypes", [(n, t.float()) for n, t, _ in dtypes])

    # Files that are PyTorch checkpoints of the wrong kind (errors expected, see bad_test.go).
    torch.manual_seed(3)
    save(torch.nn.Linear(2, 2), "bad_module.pth")  # a whole pickled module, not a state_dict
    save([1, 2, 3], "bad_list.pth")
    save({"model": {"w": torch.arange(3)}}, "bad_int_tensor.pth", legacy=True)
    save({"model": {"w": torch.ones(2), "n": 3}}, "bad_entry.pth")

    # Optimiser states latentad cannot use: the weights load, Optim stays empty (checkpoint_test.go).
    lin = torch.nn.Linear(2, 2)
    part = torch.optim.Adam([lin.weight])
    lin.weight.sum().backward()
    part.step()
    save({"model": lin.state_dict(), "args": {}, "optimizer": part.state_dict()}, "optim_partial.pth")
    ams = torch.optim.Adam(lin.parameters(), amsgrad=True)
    lin.bias.grad = torch.ones(2)
    ams.step()
    save({"model": lin.state_dict(), "args": {}, "optimizer": ams.state_dict()}, "optim_amsgrad.pth")

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"torch": torch.__version__, "refs": refs, "files": files}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
