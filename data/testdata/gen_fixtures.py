#!/usr/bin/python3
"""Fixtures of package data, written by numpy and nibabel.

Run from the repository root:  /usr/bin/python3 data/testdata/gen_fixtures.py
(needs Debian's python3-numpy and python3-nibabel). It writes

  npy/      .npy files written by numpy: float32 C order (the reference), the same data
            as big-endian '>f4', in Fortran order, and in format version 2.0; a float64
            array with its float32 rounding; an int64 array (must be rejected).
  cohort/   a tiny cohort (6x5x4 volumes) for the SPEC section 1 rules: int16 with
            nibabel's own slope/intercept, float32 with NaN/±Inf and an LV mask, folders
            matched through roi_file, by ID and by ID prefix, one without metadata, one
            without a volume; Combined_Labels.csv.
  expected/ the preprocessed (1, Z, Y, X) float32 arrays from preprocess() below, the
            numpy transcription of SPEC.md section 1.
"""
import os

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(4)


def preprocess(vol, mask=None, lo=-1000.0, hi=400.0):
    v = np.nan_to_num(vol.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    v = np.clip(v, lo, hi)
    v = (v - lo) / (hi - lo + 1e-8)
    v = np.clip(v, 0.0, 1.0)
    v = v * 2.0 - 1.0
    if mask is not None:
        v = v * (mask > 0)
    return np.transpose(v, (2, 1, 0))[None].astype(np.float32)


def npy():
    d = os.path.join(HERE, "npy")
    os.makedirs(d, exist_ok=True)
    x = rng.normal(size=(2, 3, 2, 2, 3)).astype(np.float32)
    np.save(os.path.join(d, "f4.npy"), x)
    np.save(os.path.join(d, "be_f4.npy"), x.astype(">f4"))
    np.save(os.path.join(d, "fortran_f4.npy"), np.asfortranarray(x))
    with open(os.path.join(d, "v2_f4.npy"), "wb") as f:
        np.lib.format.write_array(f, x, version=(2, 0))
    y = rng.normal(size=(3, 1, 2, 2, 2)) * 1e3
    np.save(os.path.join(d, "f8.npy"), y)
    np.save(os.path.join(d, "f8_as_f4.npy"), y.astype(np.float32))
    np.save(os.path.join(d, "i8.npy"), np.arange(6, dtype=np.int64).reshape(2, 3))
    np.save(os.path.join(d, "f4_1d.npy"), np.arange(5, dtype=np.float32))


def save(img, *parts):
    p = os.path.join(HERE, "cohort", *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    nib.save(img, p)
    return p


def cohort():
    shape = (6, 5, 4)
    aff = np.diag([0.8, 0.8, 2.0, 1.0])
    exp = os.path.join(HERE, "expected")
    os.makedirs(exp, exist_ok=True)

    # P001: int16 on disk with a slope/intercept nibabel picks for these float values.
    hu = rng.uniform(-1500, 900, size=shape)
    img = nib.Nifti1Image(hu, aff)
    img.set_data_dtype(np.int16)
    p = save(img, "P001", "P001_roi.nii.gz")
    vol = nib.load(p).get_fdata()
    assert nib.load(p).dataobj.slope != 1.0, "want a scaled int16 volume"
    np.save(os.path.join(exp, "P001.npy"), preprocess(vol))
    np.save(os.path.join(exp, "P001_window.npy"), preprocess(vol, lo=-200.0, hi=600.0))

    # P002: float32 with NaN and ±Inf, and an LV mask.
    hu = rng.uniform(-1200, 700, size=shape).astype(np.float32)
    hu[0, 0, 0], hu[1, 2, 3], hu[5, 4, 1] = np.nan, np.inf, -np.inf
    p = save(nib.Nifti1Image(hu, aff), "P002", "P002_roi.nii.gz")
    m = (rng.uniform(size=shape) > 0.5).astype(np.uint8) * 3
    mp = save(nib.Nifti1Image(m, aff), "P002", "heart_ventricle_left_roi.nii.gz")
    vol, mask = nib.load(p).get_fdata(), nib.load(mp).get_fdata()
    np.save(os.path.join(exp, "P002.npy"), preprocess(vol))
    np.save(os.path.join(exp, "P002_mask.npy"), preprocess(vol, mask))

    # More folders for the matching rules (contents are not checked).
    small = nib.Nifti1Image(rng.uniform(-1000, 400, size=shape).astype(np.float32), aff)
    save(small, "Q5", "Q5_roi.nii.gz")  # matched through roi_file only
    save(small, "TTS7_scanB", "TTS7_scanB_roi.nii.gz")  # matched by the ID prefix TTS7
    save(small, "Z9", "Z9_roi.nii.gz")  # no metadata: skipped
    os.makedirs(os.path.join(HERE, "cohort", "empty"), exist_ok=True)
    with open(os.path.join(HERE, "cohort", "empty", "README"), "w") as f:
        f.write("a folder without a volume\n")
    with open(os.path.join(HERE, "cohort", "Combined_Labels.csv"), "w") as f:
        f.write("\ufeffID,age,sex,case,roi_file,site\n")
        f.write("P001,63,F,0,P001_roi.nii.gz,A\n")
        f.write("P002,,M,1,,B\n")
        f.write("X,55.5,female,0,Q5_roi.nii.gz,A\n")
        f.write("TTS,40,M,0,,C\n")
        f.write("TTS7,70,f,1.0,,C\n")


if __name__ == "__main__":
    npy()
    cohort()
