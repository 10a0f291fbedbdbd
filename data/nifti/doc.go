// Package nifti reads and writes NIfTI images, in the spirit of Go's image/png: Read
// decodes a stream, ReadFile a path, WriteFile encodes.
//
// Reading covers NIfTI-1 and NIfTI-2 single files (.nii), gzip-compressed or not (found by
// the gzip magic bytes, not the file name), in either byte order (found from sizeof_hdr),
// with voxels of type uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32 or
// float64 and 1 to 7 dimensions. Values come back as float64 with scl_slope/scl_inter
// applied exactly as nibabel's get_fdata does, and Image.Affine is what nibabel's
// img.affine gives (sform if its code is set, else qform, else pixdim alone).
//
// Data is kept in the file's order, Fortran order: x varies fastest. For a (X, Y, Z)
// volume the value at (x, y, z) is Data[x + X*(y + Y*z)], which is also the C-order
// layout of the (Z, Y, X) array: no copy is needed to hand it to NCDHW code.
//
// Writing produces NIfTI-1 files, gzip-compressed when the name ends in .gz, with the
// affine stored both as sform and as qform.
//
// The reader is safe on hostile input: header sizes are bounded and voxel memory grows only
// as data actually arrives, so a lying header cannot make it allocate more than a small
// multiple of the file's real size.
package nifti
