package nifti

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Image is a decoded NIfTI image: its header, its scaled values and its affine.
type Image struct {
	Header
	// Data holds the values with scl_slope/scl_inter applied, in Fortran order (x fastest),
	// len(Data) == NumVoxels().
	Data []float64
	// Affine maps voxel indices (i, j, k, 1) to world millimetres; see Header.Affine.
	Affine [4][4]float64
}

// Shape returns a copy of Dims.
func (im *Image) Shape() []int { return append([]int(nil), im.Dims...) }

// Index returns the position in Data of the voxel at idx (one index per dimension).
// It panics when idx does not fit the shape, like a slice index.
func (im *Image) Index(idx ...int) int {
	if len(idx) != len(im.Dims) {
		panic(fmt.Sprintf("nifti: %d indices for a %d-D image", len(idx), len(im.Dims)))
	}
	off, stride := 0, 1
	for i, v := range idx {
		if v < 0 || v >= im.Dims[i] {
			panic(fmt.Sprintf("nifti: index %v out of range for shape %v", idx, im.Dims))
		}
		off += v * stride
		stride *= im.Dims[i]
	}
	return off
}

// At returns the value at idx, e.g. im.At(x, y, z).
func (im *Image) At(idx ...int) float64 { return im.Data[im.Index(idx...)] }

// Float32 returns Data converted to float32, in the same order.
func (im *Image) Float32() []float32 {
	out := make([]float32, len(im.Data))
	for i, v := range im.Data {
		out[i] = float32(v)
	}
	return out
}

var gzipMagic = []byte{0x1f, 0x8b}

// MaxDataBytes bounds the voxel data one image may hold (4 GiB by default, far above a
// 512×512×1000 int16 CT). Memory otherwise grows only with data actually present, but a
// gzip bomb's data is present; this makes it an error instead.
var MaxDataBytes int64 = 4 << 30

// ReadFile reads a .nii or .nii.gz file, or the .hdr of a .hdr/.img pair (the .img,
// or .img.gz, beside it holds the data). Errors name the file.
func ReadFile(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, src, err := readHeader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !h.pair() {
		im, err := readData(h, src, h.VoxOffset-h.size())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return im, nil
	}
	imgPath, err := pairImage(path)
	if err != nil {
		return nil, err
	}
	g, err := os.Open(imgPath)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	isrc, err := maybeGunzip(bufio.NewReader(g))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imgPath, err)
	}
	im, err := readData(h, isrc, h.VoxOffset)
	if err != nil {
		return nil, fmt.Errorf("%s (data of %s): %w", imgPath, path, err)
	}
	return im, nil
}

// pairImage finds the .img (or .img.gz) that goes with a .hdr (or .hdr.gz).
func pairImage(hdr string) (string, error) {
	base := strings.TrimSuffix(hdr, ".gz")
	if !strings.HasSuffix(base, ".hdr") {
		return "", fmt.Errorf("%s holds the header of a .hdr/.img pair but is not named .hdr: cannot find its .img", hdr)
	}
	base = strings.TrimSuffix(base, ".hdr")
	for _, c := range []string{base + ".img", base + ".img.gz"} {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s is the header of a .hdr/.img pair, but neither %s.img nor %s.img.gz exists", hdr, base, base)
}

func (h *Header) pair() bool { return h.Magic == "ni1" || h.Magic == "ni2" }

// size is the header's length in bytes.
func (h *Header) size() int64 {
	if h.Version == 2 {
		return sizeofHdr2
	}
	return sizeofHdr1
}

// ReadHeaderFile reads only the header of a .nii, .nii.gz or .hdr file.
func ReadHeaderFile(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, _, err := readHeader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Read decodes a single-file NIfTI image from r, decompressing it when it starts with the
// gzip magic. (A .hdr/.img pair needs ReadFile.)
func Read(r io.Reader) (*Image, error) {
	h, src, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	if h.pair() {
		return nil, fmt.Errorf("header magic %q marks a .hdr/.img pair: read it with ReadFile on the .hdr", h.Magic)
	}
	return readData(h, src, h.VoxOffset-h.size())
}

// readData skips skip bytes of src, then reads and scales the voxel data.
func readData(h *Header, src io.Reader, skip int64) (*Image, error) {
	// Skip the extensions (and anything else) up to vox_offset.
	if n, err := io.CopyN(io.Discard, src, skip); err != nil {
		return nil, fmt.Errorf("file ends %d bytes into the %d bytes before the voxel data at vox_offset %d: truncated or corrupt (%v)",
			n, skip, h.VoxOffset, unexpected(err))
	}
	size := h.Datatype.Size()
	need := int64(h.NumVoxels()) * int64(size)
	if need > MaxDataBytes {
		return nil, fmt.Errorf("header says %v %s voxels = %d bytes of data, more than the %d-byte limit (nifti.MaxDataBytes)",
			h.Dims, h.Datatype, need, MaxDataBytes)
	}
	// io.ReadAll grows its buffer as bytes arrive, so a header claiming huge dims costs
	// nothing until the data really is there.
	raw, err := io.ReadAll(io.LimitReader(src, need))
	if err != nil {
		return nil, fmt.Errorf("reading voxel data: %v", err)
	}
	if int64(len(raw)) < need {
		return nil, fmt.Errorf("truncated: header says %v %s voxels = %d bytes of data at offset %d, file holds only %d",
			h.Dims, h.Datatype, need, h.VoxOffset, len(raw))
	}
	if gz, ok := src.(*gzip.Reader); ok {
		// Read to the end so gzip verifies its checksum: a corrupt stream must not pass.
		if _, err := io.Copy(io.Discard, gz); err != nil {
			return nil, fmt.Errorf("gzip stream after the voxel data is corrupt: %v", err)
		}
	}
	im := &Image{Header: *h, Data: decodeValues(raw, h.Datatype, h.ByteOrder)}
	if slope, inter, ok := h.Scaling(); ok {
		if math.IsNaN(inter) || math.IsInf(inter, 0) {
			return nil, fmt.Errorf("scl_slope %g is valid but scl_inter %g is not finite", slope, inter)
		}
		// Same operations and order as nibabel's apply_read_scaling, in float64; the explicit
		// conversion keeps the compiler from fusing them into one FMA.
		if slope != 1 {
			for i, v := range im.Data {
				im.Data[i] = float64(v * slope)
			}
		}
		if inter != 0 {
			for i, v := range im.Data {
				im.Data[i] = v + inter
			}
		}
	}
	im.Affine = h.Affine()
	return im, nil
}

// unexpected turns io.EOF into io.ErrUnexpectedEOF for messages about short files.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// maybeGunzip decompresses br when it starts with the gzip magic bytes.
func maybeGunzip(br *bufio.Reader) (io.Reader, error) {
	if m, err := br.Peek(2); err == nil && m[0] == gzipMagic[0] && m[1] == gzipMagic[1] {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %v", err)
		}
		return gz, nil
	}
	return br, nil
}

// readHeader decodes the header and returns the stream positioned right after it.
func readHeader(r io.Reader) (*Header, io.Reader, error) {
	src, err := maybeGunzip(bufio.NewReader(r))
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, sizeofHdr2)
	if _, err := io.ReadFull(src, buf[:4]); err != nil {
		return nil, nil, fmt.Errorf("reading the header: %v", unexpected(err))
	}
	version, order, err := sniffVersion(buf[:4])
	if err != nil {
		return nil, nil, err
	}
	hsize := sizeofHdr1
	if version == 2 {
		hsize = sizeofHdr2
	}
	if n, err := io.ReadFull(src, buf[4:hsize]); err != nil {
		return nil, nil, fmt.Errorf("header truncated after %d of %d bytes: %v", n+4, hsize, unexpected(err))
	}
	h, err := decodeHeader(buf[:hsize], version, order)
	if err != nil {
		return nil, nil, err
	}
	return h, src, nil
}

// decodeValues converts raw stored values to float64.
func decodeValues(raw []byte, dt Datatype, o binary.ByteOrder) []float64 {
	n := len(raw) / dt.Size()
	out := make([]float64, n)
	switch dt {
	case Uint8:
		for i := range out {
			out[i] = float64(raw[i])
		}
	case Int8:
		for i := range out {
			out[i] = float64(int8(raw[i]))
		}
	case Int16:
		for i := range out {
			out[i] = float64(int16(o.Uint16(raw[2*i:])))
		}
	case Uint16:
		for i := range out {
			out[i] = float64(o.Uint16(raw[2*i:]))
		}
	case Int32:
		for i := range out {
			out[i] = float64(int32(o.Uint32(raw[4*i:])))
		}
	case Uint32:
		for i := range out {
			out[i] = float64(o.Uint32(raw[4*i:]))
		}
	case Int64:
		for i := range out {
			out[i] = float64(int64(o.Uint64(raw[8*i:])))
		}
	case Uint64:
		for i := range out {
			out[i] = float64(o.Uint64(raw[8*i:]))
		}
	case Float32:
		for i := range out {
			out[i] = float64(math.Float32frombits(o.Uint32(raw[4*i:])))
		}
	case Float64:
		for i := range out {
			out[i] = math.Float64frombits(o.Uint64(raw[8*i:]))
		}
	}
	return out
}
