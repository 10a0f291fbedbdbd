package nifti

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"

	"gonum.org/v1/gonum/mat"
)

// NewImage returns an image of the given shape and storage type holding data (Fortran
// order, x fastest; it is not copied), with the affine recorded as sform and qform (code 1,
// scanner), voxel sizes taken from the affine, and no scaling.
func NewImage(dims []int, dt Datatype, data []float64, affine [4][4]float64) *Image {
	im := &Image{Data: data, Affine: affine}
	im.Version = 1
	im.ByteOrder = binary.LittleEndian
	im.Magic = "n+1"
	im.Dims = append([]int(nil), dims...)
	im.Datatype = dt
	im.BitPix = 8 * dt.Size()
	im.QformCode, im.SformCode = 1, 1
	im.XYZTUnits = 2 // millimetres
	for i := range im.PixDim {
		im.PixDim[i] = 1
	}
	return im
}

// WriteFile writes im as a NIfTI-1 file, gzip-compressed when path ends in ".gz". The file
// appears atomically: the bytes go to a temporary file in the same folder, which is synced
// and renamed over path.
func WriteFile(path string, im *Image) error {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var gz *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		gz = gzip.NewWriter(&buf)
		w = gz
	}
	if err := Write(w, im); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return err
		}
	}
	return atomicfile.WriteBytes(path, buf.Bytes())
}

// Write encodes im as an uncompressed single-file NIfTI-1 stream, little-endian. The
// stored type is im.Datatype; values are stored as (v - scl_inter) / scl_slope when the
// header's scaling is valid, rounded to the nearest integer for integer types. A value that
// the type cannot hold is an error, never a silent wrap. The affine is written as sform and
// as qform (shears, which a qform cannot hold, are dropped from the qform only).
func Write(w io.Writer, im *Image) error {
	h := &im.Header
	if len(h.Dims) < 1 || len(h.Dims) > maxDims {
		return fmt.Errorf("cannot write a %d-D image: NIfTI holds 1 to 7 dimensions", len(h.Dims))
	}
	n := 1
	for _, d := range h.Dims {
		if d < 0 || d > math.MaxInt16 {
			return fmt.Errorf("dimension %d in %v does not fit NIfTI-1's int16 dims", d, h.Dims)
		}
		n *= d
	}
	if len(im.Data) != n {
		return fmt.Errorf("image of shape %v holds %d values, want %d", h.Dims, len(im.Data), n)
	}
	if !h.Datatype.Supported() {
		return fmt.Errorf("cannot write voxel datatype %v", h.Datatype)
	}
	qcode, scode := h.QformCode, h.SformCode
	if qcode == 0 {
		qcode = 1
	}
	if scode == 0 {
		scode = 1
	}
	quat, qoff, pix, qfac, err := affineToQform(im.Affine)
	if err != nil {
		return err
	}

	b := make([]byte, 352)
	le := binary.LittleEndian
	put16 := func(off int, v int) { le.PutUint16(b[off:], uint16(int16(v))) }
	putf := func(off int, v float64) { le.PutUint32(b[off:], math.Float32bits(float32(v))) }
	le.PutUint32(b[0:], sizeofHdr1)
	b[38] = 'r' // "regular", as nibabel writes
	put16(40, len(h.Dims))
	for i := 0; i < 7; i++ {
		d := 1
		if i < len(h.Dims) {
			d = h.Dims[i]
		}
		put16(42+2*i, d)
	}
	put16(68, h.IntentCode)
	put16(70, int(h.Datatype))
	put16(72, 8*h.Datatype.Size())
	putf(76, qfac)
	for i := 1; i < 8; i++ {
		p := h.PixDim[i]
		if i <= 3 {
			p = pix[i-1]
		}
		putf(76+4*i, p)
	}
	putf(108, 352)
	slope, inter, scaled := h.Scaling()
	if scaled {
		putf(112, slope)
		putf(116, inter)
	}
	b[123] = byte(h.XYZTUnits)
	putf(124, h.CalMax)
	putf(128, h.CalMin)
	copy(b[148:227], h.Descrip)
	copy(b[228:251], h.AuxFile)
	put16(252, qcode)
	put16(254, scode)
	for i := 0; i < 3; i++ {
		putf(256+4*i, quat[i])
		putf(268+4*i, qoff[i])
		for j := 0; j < 4; j++ {
			putf(280+16*i+4*j, im.Affine[i][j])
		}
	}
	copy(b[328:343], h.IntentName)
	copy(b[344:], "n+1\x00")
	// b[348:352] stays zero: no extensions.
	if _, err := w.Write(b); err != nil {
		return err
	}
	raw, err := encodeValues(im.Data, h.Datatype, slope, inter)
	if err != nil {
		return err
	}
	_, err = w.Write(raw)
	return err
}

func encodeValues(data []float64, dt Datatype, slope, inter float64) ([]byte, error) {
	size := dt.Size()
	out := make([]byte, len(data)*size)
	le := binary.LittleEndian
	lo, hi := intRange(dt)
	for i, v := range data {
		s := (v - inter) / slope
		switch dt {
		case Float32:
			le.PutUint32(out[4*i:], math.Float32bits(float32(s)))
			continue
		case Float64:
			le.PutUint64(out[8*i:], math.Float64bits(s))
			continue
		}
		r := math.RoundToEven(s)
		if math.IsNaN(r) || r < lo || r > hi {
			return nil, fmt.Errorf("value %g at voxel %d does not fit %v (stored as %g with scl_slope %g, scl_inter %g)", v, i, dt, r, slope, inter)
		}
		switch size {
		case 1:
			if dt == Int8 {
				out[i] = byte(int8(r))
			} else {
				out[i] = byte(r)
			}
		case 2:
			if dt == Int16 {
				le.PutUint16(out[2*i:], uint16(int16(r)))
			} else {
				le.PutUint16(out[2*i:], uint16(r))
			}
		case 4:
			if dt == Int32 {
				le.PutUint32(out[4*i:], uint32(int32(r)))
			} else {
				le.PutUint32(out[4*i:], uint32(r))
			}
		case 8:
			if dt == Int64 {
				le.PutUint64(out[8*i:], uint64(int64(r)))
			} else {
				le.PutUint64(out[8*i:], uint64(r))
			}
		}
	}
	return out, nil
}

// intRange is the range of an integer type, conservatively inside what float64 can
// represent exactly for the 64-bit types.
func intRange(dt Datatype) (lo, hi float64) {
	switch dt {
	case Uint8:
		return 0, math.MaxUint8
	case Int8:
		return math.MinInt8, math.MaxInt8
	case Int16:
		return math.MinInt16, math.MaxInt16
	case Uint16:
		return 0, math.MaxUint16
	case Int32:
		return math.MinInt32, math.MaxInt32
	case Uint32:
		return 0, math.MaxUint32
	case Int64:
		return -(1 << 63), (1 << 63) - 1024
	case Uint64:
		return 0, (1 << 64) - 2048
	}
	return math.Inf(-1), math.Inf(1)
}

// affineToQform decomposes an affine into what a qform holds, as nibabel's set_qform
// does: voxel sizes are the column norms, qfac makes the rotation proper, and the closest
// orthogonal matrix (polar decomposition) gives the quaternion.
func affineToQform(a [4][4]float64) (quat, off, pix [3]float64, qfac float64, err error) {
	var r [3][3]float64
	for j := 0; j < 3; j++ {
		pix[j] = math.Sqrt(a[0][j]*a[0][j] + a[1][j]*a[1][j] + a[2][j]*a[2][j])
		if pix[j] == 0 || math.IsNaN(pix[j]) || math.IsInf(pix[j], 0) {
			return quat, off, pix, 0, fmt.Errorf("affine column %d has norm %g: not a valid voxel-to-world matrix", j, pix[j])
		}
		for i := 0; i < 3; i++ {
			r[i][j] = a[i][j] / pix[j]
		}
	}
	for i := 0; i < 3; i++ {
		off[i] = a[i][3]
	}
	qfac = 1
	det := r[0][0]*(r[1][1]*r[2][2]-r[1][2]*r[2][1]) - r[0][1]*(r[1][0]*r[2][2]-r[1][2]*r[2][0]) + r[0][2]*(r[1][0]*r[2][1]-r[1][1]*r[2][0])
	if det <= 0 {
		qfac = -1
		for i := 0; i < 3; i++ {
			r[i][2] = -r[i][2]
		}
	}
	m := mat.NewDense(3, 3, []float64{r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2], r[2][0], r[2][1], r[2][2]})
	var svd mat.SVD
	if !svd.Factorize(m, mat.SVDFull) {
		return quat, off, pix, 0, fmt.Errorf("affine rotation part cannot be decomposed")
	}
	var u, v, pr mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	pr.Mul(&u, v.T())
	R := func(i, j int) float64 { return pr.At(i, j) }
	var w, x, y, z float64
	switch tr := R(0, 0) + R(1, 1) + R(2, 2); {
	case tr > 0:
		s := math.Sqrt(tr+1) * 2
		w, x, y, z = s/4, (R(2, 1)-R(1, 2))/s, (R(0, 2)-R(2, 0))/s, (R(1, 0)-R(0, 1))/s
	case R(0, 0) > R(1, 1) && R(0, 0) > R(2, 2):
		s := math.Sqrt(1+R(0, 0)-R(1, 1)-R(2, 2)) * 2
		w, x, y, z = (R(2, 1)-R(1, 2))/s, s/4, (R(0, 1)+R(1, 0))/s, (R(0, 2)+R(2, 0))/s
	case R(1, 1) > R(2, 2):
		s := math.Sqrt(1+R(1, 1)-R(0, 0)-R(2, 2)) * 2
		w, x, y, z = (R(0, 2)-R(2, 0))/s, (R(0, 1)+R(1, 0))/s, s/4, (R(1, 2)+R(2, 1))/s
	default:
		s := math.Sqrt(1+R(2, 2)-R(0, 0)-R(1, 1)) * 2
		w, x, y, z = (R(1, 0)-R(0, 1))/s, (R(0, 2)+R(2, 0))/s, (R(1, 2)+R(2, 1))/s, s/4
	}
	if w < 0 {
		x, y, z = -x, -y, -z
	}
	quat = [3]float64{x, y, z}
	return quat, off, pix, qfac, nil
}
