#!/usr/bin/python3
"""Writes the NIfTI fixtures of package nifti and nibabel's view of them.

Run from the repository root:  /usr/bin/python3 data/nifti/testdata/gen_expect.py
(needs Debian's python3-nibabel). It

  1. writes small NIfTI files of our own into this folder (int16 with slope/intercept
     gzipped, big-endian float64 with a NaN, NIfTI-2 with an extension, one tiny file per
     remaining datatype, and a big-endian .hdr/.img pair), so the codec is tested even without Debian's files;
  2. writes expect.json: for every own file and every NIfTI file Debian's nibabel ships in
     nibabel/tests/data, what nibabel reports: version, shape, datatype, byte order, header
     scaling (as the data proxy applies it), xform codes, img.affine, and value checks of get_fdata() (nansum, nanmin,
     nanmax, NaN count and a few sampled voxels by Fortran-order linear index).

The Go tests read expect.json; they skip the Debian entries when those files are absent.
"""
import gzip
import json
import os
import struct

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN = "/usr/lib/python3/dist-packages/nibabel/tests/data"
rng = np.random.default_rng(20261128)


def rot_affine(zooms, angles, offset, flip=False):
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    m = rx @ ry @ rz @ np.diag(zooms)
    if flip:
        m[:, 2] *= -1
    a = np.eye(4)
    a[:3, :3] = m
    a[:3, 3] = offset
    return a


def own_files():
    names = []
    # CT-like int16 with slope/intercept, gzipped, sform and qform both set.
    d = rng.integers(-1024, 3000, size=(5, 4, 3)).astype(np.int16)
    img = nib.Nifti1Image(d, rot_affine((0.7, 0.8, 2.5), (0.1, -0.2, 0.3), (-90, 12.5, 40)))
    img.header.set_qform(img.affine, code=1)
    img.header.set_sform(img.affine, code=2)
    # nibabel recomputes scaling on save (none for int16 data), so store the raw file and
    # patch scl_slope/scl_inter (float32 at bytes 112 and 116) in before gzipping.
    tmp = os.path.join(HERE, "tmp_unscaled.nii")
    nib.save(img, tmp)
    with open(tmp, "rb") as f:
        raw = bytearray(f.read())
    os.remove(tmp)
    raw[112:120] = struct.pack("<ff", 0.5, -1024.25)
    with gzip.GzipFile(os.path.join(HERE, "int16_scaled.nii.gz"), "wb", mtime=0) as f:
        f.write(bytes(raw))
    names.append("int16_scaled.nii.gz")

    # Big-endian float64, 4-D, a NaN, qform only with qfac -1.
    d = rng.normal(size=(3, 4, 2, 2)) * 100
    d[1, 2, 0, 1] = np.nan
    hdr = nib.Nifti1Header(endianness=">")
    img = nib.Nifti1Image(d, None, header=hdr)
    img.set_data_dtype(np.float64)
    img.header.set_qform(rot_affine((1.5, 1.5, 3.0), (0.0, 0.4, -0.1), (5, -7, 9), flip=True), code=1)
    img.header.set_sform(None, code=0)
    nib.save(img, os.path.join(HERE, "be_float64.nii"))
    names.append("be_float64.nii")

    # NIfTI-2, uint16, an extension (so vox_offset > header size), no xform: base affine.
    d = rng.integers(0, 65535, size=(4, 3, 5)).astype(np.uint16)
    img = nib.Nifti2Image(d, None)
    img.header.set_zooms((2.0, 3.0, 4.0))
    img.header.set_sform(None, code=0)
    img.header.set_qform(None, code=0)
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"latentad test extension"))
    nib.save(img, os.path.join(HERE, "nifti2_uint16_ext.nii"))
    names.append("nifti2_uint16_ext.nii")

    # One tiny file per remaining datatype, alternating byte order and version.
    types = [np.uint8, np.int8, np.int32, np.uint32, np.int64, np.uint64, np.float32]
    for i, t in enumerate(types):
        info = np.iinfo(t) if np.issubdtype(t, np.integer) else None
        if info is not None:
            lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
            d = rng.integers(lo, hi, size=(2, 3, 4), endpoint=True).astype(t)
            d.flat[0], d.flat[-1] = info.min, info.max
        else:
            d = rng.normal(size=(2, 3, 4)).astype(t)
        endian = ">" if i % 2 else "<"
        cls, hcls = (nib.Nifti2Image, nib.Nifti2Header) if i % 3 == 2 else (nib.Nifti1Image, nib.Nifti1Header)
        img = cls(d, np.diag([1.0, 2.0, 3.0, 1.0]), header=hcls(endianness=endian))
        img.set_data_dtype(t)
        name = "dtype_%s.nii" % np.dtype(t).name
        nib.save(img, os.path.join(HERE, name))
        names.append(name)

    # A .hdr/.img pair, big-endian int16, with a header-only data offset of 0.
    d = rng.integers(-3000, 3000, size=(3, 2, 4)).astype(np.int16)
    img = nib.Nifti1Pair(d, rot_affine((1.0, 1.2, 1.4), (0.2, 0.0, 0.1), (1, 2, 3)), header=nib.nifti1.Nifti1PairHeader(endianness=">"))
    nib.save(img, os.path.join(HERE, "pair_int16.hdr"))
    names.append("pair_int16.hdr")
    return names


def describe(path):
    img = nib.load(path) if not path.endswith(".dconn.nii") else nib.Nifti2Image.from_filename(path)
    if not hasattr(img.dataobj, "slope"):
        return None  # a header without its image (nibabel's nifti1.hdr and nifti2.hdr)
    hdr = img.header
    data = img.get_fdata()
    flat = data.ravel(order="F")
    n = flat.size
    idx = sorted(set([0, n - 1] + [int(i) for i in np.linspace(0, n - 1, 9)] + [int(i) for i in rng.integers(0, n, 6)]))
    finite = flat[np.isfinite(flat)]
    with open(path, "rb") as f:
        raw = f.read(4)
    return {
        "version": 2 if isinstance(hdr, nib.Nifti2Header) else 1,
        "shape": list(img.shape),
        "datatype": str(np.dtype(hdr.get_data_dtype()).newbyteorder("=").name),
        "byte_order": "big" if hdr.endianness == ">" else "little",
        "gzip": raw[:2] == b"\x1f\x8b",
        # nibabel moves the header scaling into the data proxy on load (1, 0 when none).
        "slope": float(img.dataobj.slope),
        "inter": float(img.dataobj.inter),
        "qform_code": int(hdr["qform_code"]),
        "sform_code": int(hdr["sform_code"]),
        "zooms": [float(z) for z in hdr.get_zooms()],
        "affine": img.affine.tolist(),
        "nansum": float(np.nansum(flat)),
        "nanmin": float(finite.min()),
        "nanmax": float(finite.max()),
        "nan_count": int(np.isnan(flat).sum()),
        # For `latentad inspect`: numpy's nanmean, nanstd (ddof 0) and linear percentiles.
        "nanmean": float(np.nanmean(flat)),
        "nanstd": float(np.nanstd(flat)),
        "percentiles": [float(v) for v in np.nanpercentile(flat, [1, 50, 99])],
        "samples": [[i, float(flat[i])] for i in idx if np.isfinite(flat[i])],
        "nan_samples": [i for i in idx if np.isnan(flat[i])],
    }


def main():
    out = {"own": {}, "debian": {}}
    for name in own_files():
        out["own"][name] = describe(os.path.join(HERE, name))
    for name in sorted(os.listdir(DEBIAN)):
        if ".nii" in name or name.endswith(".hdr"):
            try:
                e = describe(os.path.join(DEBIAN, name))
            except FileNotFoundError:
                e = None  # a .hdr without its .img
            if e is not None:
                out["debian"][name] = e
    with open(os.path.join(HERE, "expect.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
