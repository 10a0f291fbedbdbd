package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"

	"github.com/latentad/latentad/compute"
)

// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON — {"name": {"dtype", "shape", "data_offsets": [begin, end]},
// …, "__metadata__": {string: string}} — then the tensors' raw little-endian bytes, offsets
// relative to the end of the header. Written here rather than through a library so that every
// malformed input gets an error that says what is wrong with it.

// maxHeaderLen bounds the JSON header, as the reference implementation does (100 MB), so a
// corrupt length cannot make us allocate gigabytes.
const maxHeaderLen = 100 << 20

// stTensor is one named tensor of a safetensors file, already converted to float32.
type stTensor struct {
	name  string
	array compute.Array
	dtype string // dtype as stored ("F32", "F64", …)
	begin uint64 // data offset: file order is the order of the tensors when written
}

// stFile is a decoded safetensors file.
type stFile struct {
	tensors  []stTensor // in data order
	metadata map[string]string
	size     int // file size in bytes
}

var stElemSize = map[string]uint64{"F32": 4, "F64": 8, "F16": 2, "BF16": 2}

// decodeSafetensors parses a whole safetensors file. Errors do not name the file; the caller
// prefixes the path.
func decodeSafetensors(data []byte) (*stFile, error) {
	size := len(data)
	if size < 8 {
		return nil, fmt.Errorf("truncated: a safetensors file starts with an 8-byte header length, file has %d bytes", size)
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > maxHeaderLen {
		return nil, fmt.Errorf("corrupt safetensors header: its length field says %d bytes (more than the %d allowed)", hlen, maxHeaderLen)
	}
	if 8+hlen > uint64(size) {
		return nil, fmt.Errorf("truncated: header says %d bytes, file has %d", 8+hlen, size)
	}
	hdr := data[8 : 8+hlen]
	body := data[8+hlen:]

	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("corrupt safetensors header: its JSON does not parse: %v", err)
	}
	if raw == nil {
		return nil, fmt.Errorf("corrupt safetensors header: JSON null instead of an object")
	}
	// Only spaces may follow the JSON object (the format pads the header to 8 bytes with them).
	if rest := bytes.TrimLeft(hdr[dec.InputOffset():], " \t\r\n\x00"); len(rest) > 0 {
		return nil, fmt.Errorf("corrupt safetensors header: %d unexpected bytes after its JSON object", len(rest))
	}

	f := &stFile{metadata: map[string]string{}, size: size}
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &f.metadata); err != nil {
			return nil, fmt.Errorf("corrupt safetensors header: __metadata__ must map strings to strings: %v", err)
		}
		if f.metadata == nil {
			f.metadata = map[string]string{}
		}
		delete(raw, "__metadata__")
	}

	type entry struct {
		Dtype       string   `json:"dtype"`
		Shape       []int64  `json:"shape"`
		DataOffsets []uint64 `json:"data_offsets"`
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	var maxEnd uint64
	for _, name := range names {
		var e entry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, fmt.Errorf("corrupt safetensors header: tensor %q: %v", name, err)
		}
		if e.Dtype == "" || e.Shape == nil || len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("corrupt safetensors header: tensor %q needs dtype, shape and data_offsets [begin, end]", name)
		}
		es, ok := stElemSize[e.Dtype]
		if !ok {
			return nil, fmt.Errorf("tensor %q has dtype %s; latentad reads F32, F64, F16 and BF16", name, e.Dtype)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin > end {
			return nil, fmt.Errorf("corrupt safetensors header: tensor %q has data_offsets [%d, %d], begin after end", name, begin, end)
		}
		// The element count may not exceed what the file could hold; checking as we multiply
		// keeps hostile shapes from overflowing.
		limit := uint64(len(body)) / es
		shape := make([]int, len(e.Shape))
		numel, zero, over := uint64(1), false, false
		for i, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("corrupt safetensors header: tensor %q has negative dimension in shape %v", name, e.Shape)
			}
			shape[i] = int(d)
			switch {
			case d == 0:
				zero = true
			case uint64(d) > limit/numel:
				over = true
			default:
				numel *= uint64(d)
			}
		}
		if zero {
			numel, over = 0, false
		}
		if end > uint64(len(body)) {
			maxEnd = max(maxEnd, end)
			continue // reported as truncation below, after every entry has been checked
		}
		if over || numel*es != end-begin {
			return nil, fmt.Errorf("corrupt safetensors header: tensor %q: data_offsets [%d, %d] hold %d bytes, its dtype %s and shape %v need %s",
				name, begin, end, end-begin, e.Dtype, e.Shape, needBytes(e.Shape, es))
		}
		a, err := decodeFloats(body[begin:end], e.Dtype, shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		f.tensors = append(f.tensors, stTensor{name: name, array: a, dtype: e.Dtype, begin: begin})
	}
	if maxEnd > 0 {
		return nil, fmt.Errorf("truncated: header says %d bytes, file has %d", 8+hlen+maxEnd, size)
	}
	sort.SliceStable(f.tensors, func(i, j int) bool { return f.tensors[i].begin < f.tensors[j].begin })
	return f, nil
}

// needBytes formats the byte count of a shape without overflowing.
func needBytes(shape []int64, es uint64) string {
	n := new(big.Int).SetUint64(es)
	for _, d := range shape {
		n.Mul(n, big.NewInt(d))
	}
	return n.String()
}

// decodeFloats converts little-endian values of a safetensors dtype to float32.
func decodeFloats(b []byte, dtype string, shape []int) (compute.Array, error) {
	n := compute.Numel(shape)
	out := compute.Array{Shape: shape, Data: make([]float32, n)}
	switch dtype {
	case "F32":
		for i := range out.Data {
			out.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F64":
		for i := range out.Data {
			out.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case "F16":
		for i := range out.Data {
			out.Data[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "BF16":
		for i := range out.Data {
			out.Data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	default:
		return compute.Array{}, fmt.Errorf("unsupported dtype %s", dtype)
	}
	return out, nil
}

// halfToFloat converts an IEEE 754 binary16 value to float32 (exact: every half is a float32).
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: mant · 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// encodeSafetensors writes float32 tensors in the given order with the metadata. The header is
// padded with spaces to a multiple of 8 bytes, as the reference implementation does, so the
// data of each tensor is 4-byte aligned.
func encodeSafetensors(w io.Writer, names []string, tensors map[string]compute.Array, metadata map[string]string) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return err
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(m)
	}
	var off uint64
	for i, name := range names {
		a := tensors[name]
		if err := a.Check(); err != nil {
			return fmt.Errorf("tensor %q: %v", name, err)
		}
		if i > 0 || len(metadata) > 0 {
			hdr.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		hdr.Write(k)
		shape := a.Shape
		if shape == nil {
			shape = []int{}
		}
		s, _ := json.Marshal(shape)
		n := 4 * uint64(len(a.Data))
		fmt.Fprintf(&hdr, `:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, s, off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for (8+hdr.Len())%8 != 0 {
		hdr.WriteByte(' ')
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(hdr.Len()))
	if _, err := w.Write(lenb[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	// Values in chunks, so a large model needs no second copy in memory.
	buf := make([]byte, 0, 1<<16)
	for _, name := range names {
		for _, v := range tensors[name].Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// orderedNames returns the keys of m in the order given when order lists exactly those keys,
// else sorted.
func orderedNames(m map[string]compute.Array, order []string) []string {
	if len(order) == len(m) {
		ok := true
		seen := make(map[string]bool, len(order))
		for _, k := range order {
			if _, in := m[k]; !in || seen[k] {
				ok = false
				break
			}
			seen[k] = true
		}
		if ok {
			return slices.Clone(order)
		}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// quoteStart shows the first bytes of a file for an error message.
func quoteStart(data []byte) string {
	n := min(len(data), 16)
	return strconv.QuoteToASCII(string(data[:n]))
}
