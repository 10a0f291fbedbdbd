"""Fixture of cli's extract test, made at test time (the seed-size autoencoder is 5 MB):
    /usr/bin/python3 cli/testdata/gen_extract.py OUTDIR
writes OUTDIR/cohort (volumes written by nibabel: int16 with slope/intercept gzipped, a
float32 volume with a NaN voxel, LV masks; Combined_Labels.csv), OUTDIR/ae.pth (a
torch.save'd seed Tiny3DAE, base 16, with argparse.Namespace args), and the latents PyTorch
computes from them, with the seed's preprocessing (SPEC section 1), in OUTDIR/expect.npy
and OUTDIR/expect.json (ids and labels in sorted folder order)."""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "pyref"))
import seed  # noqa: E402

out = sys.argv[1]
rng = np.random.default_rng(7)
torch.manual_seed(3)
X, Y, Z = 16, 16, 8
affine = np.diag([1.5, 1.5, 3.0, 1.0])
affine[:3, 3] = [-12, -12, -10]


def preprocess(vol, mask, lo=-1000.0, hi=400.0):
    v = np.nan_to_num(vol.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    v = np.clip(v, lo, hi)
    v = (v - lo) / (hi - lo + 1e-8)
    v = np.clip(v, 0.0, 1.0) * 2.0 - 1.0
    v = v * (mask > 0)
    return np.transpose(v, (2, 1, 0))[None].astype(np.float32)


patients = [("P001", 0, "int16"), ("P002", 1, "float32"), ("P003", 0, "int16")]
rows = ["ID,age,sex,case,roi_file"]
vols = []
for pid, case, dtype in patients:
    d = os.path.join(out, "cohort", pid)
    os.makedirs(d)
    hu = rng.normal(-300, 400, size=(X, Y, Z))
    mask = np.zeros((X, Y, Z), np.uint8)
    mask[4:12, 3:13, 2:7] = 1
    if dtype == "int16":
        img = nib.Nifti1Image(hu, affine)
        img.set_data_dtype(np.int16)
        img.header.set_slope_inter(2.0, -1024.0)
    else:
        hu = hu.astype(np.float32)
        hu[3, 5, 2] = np.nan
        img = nib.Nifti1Image(hu, affine)
    nib.save(img, os.path.join(d, pid + "_roi.nii.gz"))
    nib.save(nib.Nifti1Image(mask, affine), os.path.join(d, "heart_ventricle_left_roi.nii.gz"))
    # What the file holds after nibabel's own int16 rounding: read it back.
    stored = nib.load(os.path.join(d, pid + "_roi.nii.gz")).get_fdata()
    vols.append(preprocess(stored, mask))
    rows.append(f"{pid},{50 + len(rows)},{'F' if case else 'M'},{case},{pid}_roi.nii.gz")
with open(os.path.join(out, "cohort", "Combined_Labels.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")

ae = seed.Tiny3DAE(16).eval()
with torch.no_grad():
    z = ae.enc(torch.from_numpy(np.stack(vols)))
ns = argparse.Namespace(lr=1e-3, epochs=20, batch_size=2, base=16)
torch.save({"model": ae.state_dict(), "args": ns, "epoch": 20}, os.path.join(out, "ae.pth"))
np.save(os.path.join(out, "expect.npy"), z.numpy())
with open(os.path.join(out, "expect.json"), "w") as f:
    json.dump({"ids": [p[0] for p in patients], "labels": [p[1] for p in patients]}, f)
