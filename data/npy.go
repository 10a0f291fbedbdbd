package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"

	"github.com/latentad/latentad/compute"
)

// The .npy format (numpy.lib.format): magic "\x93NUMPY", version bytes, a little-endian
// header length (2 bytes in 1.0, 4 in 2.0 and 3.0), then a Python dict literal with descr,
// fortran_order and shape, padded with spaces to a 64-byte boundary and ending in '\n'.
var npyMagic = []byte("\x93NUMPY")

// ReadNPY reads a .npy file as float32. Little- and big-endian float32 and float64 are
// accepted (float64 is rounded to float32), in C or Fortran order; any other dtype is an
// error that names it. Errors name the file.
func ReadNPY(path string) (compute.Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return compute.Array{}, err
	}
	defer f.Close()
	a, err := DecodeNPY(bufio.NewReader(f))
	if err != nil {
		return compute.Array{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// DecodeNPY decodes a .npy stream; see ReadNPY.
func DecodeNPY(r io.Reader) (compute.Array, error) {
	pre := make([]byte, 10)
	if _, err := io.ReadFull(r, pre); err != nil || !bytes.Equal(pre[:6], npyMagic) {
		return compute.Array{}, fmt.Errorf("not a .npy file (no \\x93NUMPY magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		hlen = int(binary.LittleEndian.Uint16(pre[8:]))
	case 2, 3:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return compute.Array{}, fmt.Errorf("truncated .npy header")
		}
		hlen = int(binary.LittleEndian.Uint32(append(pre[8:10:10], b[:]...)))
	default:
		return compute.Array{}, fmt.Errorf(".npy format version %d.%d is not supported (want 1.0, 2.0 or 3.0)", pre[6], pre[7])
	}
	if hlen > 1<<20 {
		return compute.Array{}, fmt.Errorf(".npy header length %d is implausible", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return compute.Array{}, fmt.Errorf("truncated .npy header (%d bytes announced)", hlen)
	}
	descr, fortran, shape, err := parseNPYHeader(string(hdr))
	if err != nil {
		return compute.Array{}, err
	}
	var order binary.ByteOrder = binary.LittleEndian
	size := 0
	switch descr {
	case "<f4", "<f8":
	case ">f4", ">f8":
		order = binary.BigEndian
	default:
		return compute.Array{}, fmt.Errorf(".npy dtype %q is not supported: want float32 ('<f4'), or float64 / big-endian floats to convert", descr)
	}
	size = int(descr[2] - '0')
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > (1<<40)/d) {
			return compute.Array{}, fmt.Errorf(".npy shape %v is implausible", shape)
		}
		n *= d
	}
	need := int64(n) * int64(size)
	raw, err := io.ReadAll(io.LimitReader(r, need))
	if err != nil {
		return compute.Array{}, err
	}
	if int64(len(raw)) < need {
		return compute.Array{}, fmt.Errorf("truncated: shape %v of %s needs %d bytes of data, the file holds %d", shape, descr, need, len(raw))
	}
	a := compute.Array{Shape: shape, Data: make([]float32, n)}
	for i := range a.Data {
		if size == 4 {
			a.Data[i] = math.Float32frombits(order.Uint32(raw[4*i:]))
		} else {
			a.Data[i] = float32(math.Float64frombits(order.Uint64(raw[8*i:])))
		}
	}
	if fortran && len(shape) > 1 {
		a.Data = fortranToC(a.Data, shape)
	}
	return a, nil
}

// fortranToC reorders column-major data of the given shape into row-major.
func fortranToC(src []float32, shape []int) []float32 {
	dst := make([]float32, len(src))
	nd := len(shape)
	idx := make([]int, nd)
	// Walk dst in C order, tracking the Fortran offset.
	fstride := make([]int, nd)
	s := 1
	for i := 0; i < nd; i++ {
		fstride[i] = s
		s *= shape[i]
	}
	off := 0
	for i := range dst {
		dst[i] = src[off]
		for k := nd - 1; k >= 0; k-- {
			idx[k]++
			off += fstride[k]
			if idx[k] < shape[k] {
				break
			}
			off -= idx[k] * fstride[k]
			idx[k] = 0
		}
	}
	return dst
}

// parseNPYHeader reads the dict literal numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
func parseNPYHeader(h string) (descr string, fortran bool, shape []int, err error) {
	h = strings.TrimSpace(h)
	value := func(key string) (string, bool) {
		for _, q := range []string{"'", `"`} {
			k := q + key + q
			if i := strings.Index(h, k); i >= 0 {
				rest := strings.TrimLeft(h[i+len(k):], " ")
				if !strings.HasPrefix(rest, ":") {
					return "", false
				}
				return strings.TrimLeft(rest[1:], " "), true
			}
		}
		return "", false
	}
	bad := func(what string) (string, bool, []int, error) {
		return "", false, nil, fmt.Errorf("malformed .npy header (%s): %q", what, h)
	}
	v, ok := value("descr")
	if !ok || len(v) < 2 || (v[0] != '\'' && v[0] != '"') {
		return bad("descr")
	}
	end := strings.IndexByte(v[1:], v[0])
	if end < 0 {
		return bad("descr")
	}
	descr = v[1 : 1+end]
	if v, ok = value("fortran_order"); !ok {
		return bad("fortran_order")
	}
	switch {
	case strings.HasPrefix(v, "True"):
		fortran = true
	case strings.HasPrefix(v, "False"):
	default:
		return bad("fortran_order")
	}
	if v, ok = value("shape"); !ok || !strings.HasPrefix(v, "(") {
		return bad("shape")
	}
	end = strings.IndexByte(v, ')')
	if end < 0 {
		return bad("shape")
	}
	shape = []int{}
	for _, part := range strings.Split(v[1:end], ",") {
		part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), "L"))
		if part == "" {
			continue
		}
		d, err := strconv.Atoi(part)
		if err != nil || d < 0 {
			return bad("shape")
		}
		shape = append(shape, d)
	}
	return descr, fortran, shape, nil
}

// EncodeNPY writes a as a version 1.0 little-endian float32 C-order .npy stream.
func EncodeNPY(w io.Writer, a compute.Array) error {
	if err := a.Check(); err != nil {
		return err
	}
	dims := make([]string, len(a.Shape))
	for i, d := range a.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(a.Shape) == 1 {
		shape += ","
	}
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape)
	// Pad so that magic + version + length + dict + '\n' is a multiple of 64, as numpy does.
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	if len(hdr) > math.MaxUint16 {
		return fmt.Errorf(".npy header too long for shape %v", a.Shape)
	}
	buf := make([]byte, 10+len(hdr)+4*len(a.Data))
	copy(buf, npyMagic)
	buf[6], buf[7] = 1, 0
	binary.LittleEndian.PutUint16(buf[8:], uint16(len(hdr)))
	copy(buf[10:], hdr)
	p := buf[10+len(hdr):]
	for i, v := range a.Data {
		binary.LittleEndian.PutUint32(p[4*i:], math.Float32bits(v))
	}
	_, err := w.Write(buf)
	return err
}

// WriteNPY writes a to path atomically (temporary file, fsync, rename).
func WriteNPY(path string, a compute.Array) error {
	var b bytes.Buffer
	if err := EncodeNPY(&b, a); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, b.Bytes())
}
