package nifti

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Datatype is a NIfTI datatype code (the header's datatype field).
type Datatype int16

// The datatypes this package reads. Complex, RGB and 128-bit float types are rejected.
const (
	Uint8   Datatype = 2
	Int16   Datatype = 4
	Int32   Datatype = 8
	Float32 Datatype = 16
	Float64 Datatype = 64
	Int8    Datatype = 256
	Uint16  Datatype = 512
	Uint32  Datatype = 768
	Int64   Datatype = 1024
	Uint64  Datatype = 1280
)

var datatypeInfo = map[Datatype]struct {
	name string
	size int
}{
	Uint8: {"uint8", 1}, Int16: {"int16", 2}, Int32: {"int32", 4}, Float32: {"float32", 4},
	Float64: {"float64", 8}, Int8: {"int8", 1}, Uint16: {"uint16", 2}, Uint32: {"uint32", 4},
	Int64: {"int64", 8}, Uint64: {"uint64", 8},
}

// unsupported names the NIfTI types that exist but that this package does not read, so the
// error can say what the file holds.
var unsupported = map[Datatype]string{
	32: "complex64", 128: "rgb24", 1536: "float128", 1792: "complex128", 2048: "complex256", 2304: "rgba32",
}

// String returns the numpy-style name of the type ("int16", "float32", ...).
func (d Datatype) String() string {
	if i, ok := datatypeInfo[d]; ok {
		return i.name
	}
	if n, ok := unsupported[d]; ok {
		return n
	}
	return fmt.Sprintf("datatype(%d)", int16(d))
}

// Size is the number of bytes per voxel, 0 for a type this package does not read.
func (d Datatype) Size() int { return datatypeInfo[d].size }

// Supported reports whether this package reads and writes the type.
func (d Datatype) Supported() bool { _, ok := datatypeInfo[d]; return ok }

// Header is a decoded NIfTI-1 or NIfTI-2 header. Fields of both versions are widened to
// the NIfTI-2 types (int64 dims, float64 everything else), so callers need not care which
// version the file was.
type Header struct {
	Version   int              // 1 or 2
	ByteOrder binary.ByteOrder // binary.LittleEndian or binary.BigEndian, as found in the file
	Magic     string           // "n+1", "ni1", "n+2" or "ni2"

	Dims     []int // dim[1..dim[0]], e.g. (X, Y, Z) or (X, Y, Z, T)
	Datatype Datatype
	BitPix   int
	// PixDim holds pixdim[0..7]: pixdim[0] is qfac, pixdim[1..3] the voxel size.
	// Like nibabel, a qfac other than ±1 reads as 1, and negative or zero voxel sizes
	// read as their absolute value or 1.
	PixDim [8]float64
	// VoxOffset is the byte offset of the voxel data: in a single file, at least the
	// header size; in a .hdr/.img pair (magic "ni1"/"ni2"), the offset inside the .img.
	VoxOffset int64

	SclSlope, SclInter float64 // raw header values; see Scaling
	CalMin, CalMax     float64

	QformCode, SformCode int        // invalid codes (not 0..5) read as 0, as nibabel does
	Quatern              [3]float64 // quatern_b, c, d
	QOffset              [3]float64
	Srow                 [3][4]float64 // srow_x, srow_y, srow_z

	IntentCode             int
	IntentP1, IntentP2     float64
	IntentP3               float64
	IntentName             string
	Descrip, AuxFile       string
	XYZTUnits, DimInfo     int
	SliceCode              int
	SliceStart, SliceEnd   int64
	SliceDuration, TOffset float64
}

// NumVoxels is the product of Dims.
func (h *Header) NumVoxels() int {
	n := 1
	for _, d := range h.Dims {
		n *= d
	}
	return n
}

// VoxelSize returns pixdim[1..len(Dims)] (at most 7 values).
func (h *Header) VoxelSize() []float64 {
	return append([]float64(nil), h.PixDim[1:1+len(h.Dims)]...)
}

// Scaling returns the scale factor and intercept applied to stored values, following
// nibabel: no scaling (ok false) when scl_slope is 0 or not finite.
func (h *Header) Scaling() (slope, inter float64, ok bool) {
	if h.SclSlope == 0 || math.IsNaN(h.SclSlope) || math.IsInf(h.SclSlope, 0) {
		return 1, 0, false
	}
	return h.SclSlope, h.SclInter, true
}

// Affine returns the voxel-to-world matrix nibabel's img.affine gives: the sform when
// sform_code ≠ 0, else the qform when qform_code ≠ 0, else the pixdim-only base affine.
func (h *Header) Affine() [4][4]float64 {
	switch {
	case h.SformCode != 0:
		return h.SformAffine()
	case h.QformCode != 0:
		return h.QformAffine()
	}
	return h.BaseAffine()
}

// SformAffine returns the srow_x/y/z matrix.
func (h *Header) SformAffine() [4][4]float64 {
	var a [4][4]float64
	a[0], a[1], a[2] = h.Srow[0], h.Srow[1], h.Srow[2]
	a[3][3] = 1
	return a
}

// QformAffine returns the matrix of the quaternion, voxel size, qfac and offsets.
func (h *Header) QformAffine() [4][4]float64 {
	b, c, d := h.Quatern[0], h.Quatern[1], h.Quatern[2]
	// Like nibabel's fillpositive: w from the unit-norm constraint, w2 slightly below 0 is
	// float32 round-off and reads as 0.
	w := 0.0
	if w2 := 1 - (b*b + c*c + d*d); w2 > 0 {
		w = math.Sqrt(w2)
	}
	r := quatToMat(w, b, c, d)
	vox := [3]float64{h.PixDim[1], h.PixDim[2], h.PixDim[3]}
	vox[2] *= h.PixDim[0]
	var a [4][4]float64
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			a[i][j] = r[i][j] * vox[j]
		}
		a[i][3] = h.QOffset[i]
	}
	a[3][3] = 1
	return a
}

// BaseAffine is nibabel's fallback: voxel sizes on the diagonal, x flipped, origin at the
// centre of the volume.
func (h *Header) BaseAffine() [4][4]float64 {
	shape := [3]float64{1, 1, 1}
	zoom := [3]float64{1, 1, 1}
	for i := 0; i < 3 && i < len(h.Dims); i++ {
		shape[i] = float64(h.Dims[i])
		zoom[i] = h.PixDim[i+1]
	}
	zoom[0] = -zoom[0]
	var a [4][4]float64
	for i := 0; i < 3; i++ {
		a[i][i] = zoom[i]
		a[i][3] = -(shape[i] - 1) / 2 * zoom[i]
	}
	a[3][3] = 1
	return a
}

// quatToMat is the rotation matrix of the quaternion (w, x, y, z), as nibabel's quat2mat.
func quatToMat(w, x, y, z float64) [3][3]float64 {
	n := w*w + x*x + y*y + z*z
	if n < 2.220446049250313e-16 {
		return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	}
	s := 2 / n
	X, Y, Z := x*s, y*s, z*s
	wX, wY, wZ := w*X, w*Y, w*Z
	xX, xY, xZ := x*X, x*Y, x*Z
	yY, yZ, zZ := y*Y, y*Z, z*Z
	return [3][3]float64{
		{1 - (yY + zZ), xY - wZ, xZ + wY},
		{xY + wZ, 1 - (xX + zZ), yZ - wX},
		{xZ - wY, yZ + wX, 1 - (xX + yY)},
	}
}

const (
	sizeofHdr1 = 348
	sizeofHdr2 = 540
	maxDims    = 7
)

// sniffVersion finds the version and byte order from sizeof_hdr (the first 4 bytes).
func sniffVersion(b []byte) (version int, order binary.ByteOrder, err error) {
	le := binary.LittleEndian.Uint32(b)
	be := binary.BigEndian.Uint32(b)
	switch {
	case le == sizeofHdr1:
		return 1, binary.LittleEndian, nil
	case be == sizeofHdr1:
		return 1, binary.BigEndian, nil
	case le == sizeofHdr2:
		return 2, binary.LittleEndian, nil
	case be == sizeofHdr2:
		return 2, binary.BigEndian, nil
	}
	return 0, nil, fmt.Errorf("not a NIfTI file: sizeof_hdr is %d (little-endian) / %d (big-endian), want 348 (NIfTI-1) or 540 (NIfTI-2)", le, be)
}

func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

type fieldReader struct {
	b []byte
	o binary.ByteOrder
}

func (f fieldReader) i16(off int) int64 { return int64(int16(f.o.Uint16(f.b[off:]))) }
func (f fieldReader) i32(off int) int64 { return int64(int32(f.o.Uint32(f.b[off:]))) }
func (f fieldReader) i64(off int) int64 { return int64(f.o.Uint64(f.b[off:])) }
func (f fieldReader) f32(off int) float64 {
	return float64(math.Float32frombits(f.o.Uint32(f.b[off:])))
}
func (f fieldReader) f64(off int) float64 { return math.Float64frombits(f.o.Uint64(f.b[off:])) }

// decodeHeader parses a complete header block (348 or 540 bytes) of the given version.
func decodeHeader(b []byte, version int, order binary.ByteOrder) (*Header, error) {
	f := fieldReader{b, order}
	h := &Header{Version: version, ByteOrder: order}
	var dim [8]int64
	var vox float64
	if version == 1 {
		h.Magic = cstring(b[344:348])
		if h.Magic != "n+1" && h.Magic != "ni1" {
			return nil, fmt.Errorf("NIfTI-1 header has magic %q, want \"n+1\" or \"ni1\" (an Analyze 7.5 file is not read)", h.Magic)
		}
		for i := range dim {
			dim[i] = f.i16(40 + 2*i)
		}
		h.IntentP1, h.IntentP2, h.IntentP3 = f.f32(56), f.f32(60), f.f32(64)
		h.IntentCode = int(f.i16(68))
		h.Datatype = Datatype(f.i16(70))
		h.BitPix = int(f.i16(72))
		h.SliceStart = f.i16(74)
		for i := range h.PixDim {
			h.PixDim[i] = f.f32(76 + 4*i)
		}
		vox = f.f32(108)
		h.SclSlope, h.SclInter = f.f32(112), f.f32(116)
		h.SliceEnd = f.i16(120)
		h.SliceCode = int(b[122])
		h.XYZTUnits = int(b[123])
		h.CalMax, h.CalMin = f.f32(124), f.f32(128)
		h.SliceDuration, h.TOffset = f.f32(132), f.f32(136)
		h.Descrip = cstring(b[148:228])
		h.AuxFile = cstring(b[228:252])
		h.QformCode, h.SformCode = int(f.i16(252)), int(f.i16(254))
		for i := 0; i < 3; i++ {
			h.Quatern[i] = f.f32(256 + 4*i)
			h.QOffset[i] = f.f32(268 + 4*i)
			for j := 0; j < 4; j++ {
				h.Srow[i][j] = f.f32(280 + 16*i + 4*j)
			}
		}
		h.IntentName = cstring(b[328:344])
		h.DimInfo = int(b[39])
	} else {
		h.Magic = cstring(b[4:12])
		if h.Magic != "n+2" && h.Magic != "ni2" {
			return nil, fmt.Errorf("NIfTI-2 header has magic %q, want \"n+2\" or \"ni2\"", h.Magic)
		}
		h.Datatype = Datatype(f.i16(12))
		h.BitPix = int(f.i16(14))
		for i := range dim {
			dim[i] = f.i64(16 + 8*i)
		}
		h.IntentP1, h.IntentP2, h.IntentP3 = f.f64(80), f.f64(88), f.f64(96)
		for i := range h.PixDim {
			h.PixDim[i] = f.f64(104 + 8*i)
		}
		vox = float64(f.i64(168))
		h.SclSlope, h.SclInter = f.f64(176), f.f64(184)
		h.CalMax, h.CalMin = f.f64(192), f.f64(200)
		h.SliceDuration, h.TOffset = f.f64(208), f.f64(216)
		h.SliceStart, h.SliceEnd = f.i64(224), f.i64(232)
		h.Descrip = cstring(b[240:320])
		h.AuxFile = cstring(b[320:344])
		h.QformCode, h.SformCode = int(f.i32(344)), int(f.i32(348))
		for i := 0; i < 3; i++ {
			h.Quatern[i] = f.f64(352 + 8*i)
			h.QOffset[i] = f.f64(376 + 8*i)
			for j := 0; j < 4; j++ {
				h.Srow[i][j] = f.f64(400 + 32*i + 8*j)
			}
		}
		h.SliceCode = int(f.i32(496))
		h.XYZTUnits = int(f.i32(500))
		h.IntentCode = int(f.i32(504))
		h.IntentName = cstring(b[508:524])
		h.DimInfo = int(b[524])
	}
	if dim[0] < 1 || dim[0] > maxDims {
		return nil, fmt.Errorf("header dim[0] = %d: the number of dimensions must be 1..7", dim[0])
	}
	h.Dims = make([]int, dim[0])
	total := int64(1)
	for i := range h.Dims {
		d := dim[i+1]
		if d < 0 {
			return nil, fmt.Errorf("header dim[%d] = %d is negative", i+1, d)
		}
		// Cap the voxel count so a hostile header cannot overflow the size arithmetic; the
		// data length check later bounds what is actually allocated.
		if d > 0 && total > (1<<40)/d {
			return nil, fmt.Errorf("header dims %v describe more than 2^40 voxels", dim[1:dim[0]+1])
		}
		total *= d
		h.Dims[i] = int(d)
	}
	if !h.Datatype.Supported() {
		return nil, fmt.Errorf("voxel datatype %v (code %d) is not supported: want one of uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64", h.Datatype, int16(h.Datatype))
	}
	// Mirror nibabel's load-time fixes so the affine matches img.affine.
	if h.PixDim[0] != 1 && h.PixDim[0] != -1 {
		h.PixDim[0] = 1
	}
	for i := 1; i <= 3; i++ {
		switch p := h.PixDim[i]; {
		case p == 0:
			h.PixDim[i] = 1
		case p < 0:
			h.PixDim[i] = -p
		}
	}
	if h.QformCode < 0 || h.QformCode > 5 {
		h.QformCode = 0
	}
	if h.SformCode < 0 || h.SformCode > 5 {
		h.SformCode = 0
	}
	hsize := int64(sizeofHdr1)
	if version == 2 {
		hsize = sizeofHdr2
	}
	pair := h.Magic == "ni1" || h.Magic == "ni2"
	switch {
	case vox > 1<<50:
		return nil, fmt.Errorf("header vox_offset %g is beyond any plausible file size", vox)
	case pair && (math.IsNaN(vox) || vox < 0):
		h.VoxOffset = 0
	case pair:
		// In a pair, vox_offset is the data's offset inside the .img file.
		h.VoxOffset = int64(vox)
	case math.IsNaN(vox) || vox < float64(hsize):
		// vox_offset 0 (or any value inside the header) means "right after the header".
		h.VoxOffset = hsize
	default:
		h.VoxOffset = int64(vox)
	}
	return h, nil
}
