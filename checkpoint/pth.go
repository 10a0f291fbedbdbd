package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"path"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/latentad/latentad/compute"
)

// Reading PyTorch's torch.save files. Both formats pickle the object with tensors replaced by
// "persistent ids" that name a storage; the zip format (PyTorch ≥ 1.6, the default) keeps each
// storage in its own archive record <archive>/data/<key>, the legacy format
// (_use_new_zipfile_serialization=False) is a row of pickles — magic number, protocol version,
// system info, the object, the list of storage keys — followed by each storage as an int64
// element count and the raw little-endian values.
//
// gopickle's own pytorch package panics on some inputs (legacy tar files, storage views), so
// only its unpickler is used, with our own class lookup: everything foreign (argparse.Namespace,
// numpy scalars, torch.device, …) becomes a generic object, so no unknown class can break
// loading; only the values a checkpoint needs are interpreted.

// legacyMagic is torch.serialization.MAGIC_NUMBER.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocol = 1001

// maxConvertDepth bounds recursion over pickled values: a pickle can build cyclic or very deep
// structures, and recursion without a bound would exhaust the stack (which cannot be recovered).
const maxConvertDepth = 64

// pyClass is any Python class or function we do not interpret; calling it records the call.
type pyClass struct{ module, name string }

func (c *pyClass) qualname() string { return c.module + "." + c.name }

func (c *pyClass) Call(args ...any) (any, error)  { return &pyObject{class: c, args: args}, nil }
func (c *pyClass) PyNew(args ...any) (any, error) { return &pyObject{class: c, args: args}, nil }

// pyObject is an instance of a pyClass: its constructor arguments and its pickled state.
type pyObject struct {
	class *pyClass
	args  []any
	state any
}

func (o *pyObject) PySetState(state any) error { o.state = state; return nil }

// storageClass stands for torch.FloatStorage and friends.
type storageClass struct {
	name     string
	dtype    string // safetensors-style: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL
	elemSize int
}

var storageClasses = map[string]storageClass{
	"FloatStorage":    {"FloatStorage", "F32", 4},
	"DoubleStorage":   {"DoubleStorage", "F64", 8},
	"HalfStorage":     {"HalfStorage", "F16", 2},
	"BFloat16Storage": {"BFloat16Storage", "BF16", 2},
	"LongStorage":     {"LongStorage", "I64", 8},
	"IntStorage":      {"IntStorage", "I32", 4},
	"ShortStorage":    {"ShortStorage", "I16", 2},
	"CharStorage":     {"CharStorage", "I8", 1},
	"ByteStorage":     {"ByteStorage", "U8", 1},
	"BoolStorage":     {"BoolStorage", "BOOL", 1},
}

// pthStorage is one storage: its type, element count and raw bytes (nil until read).
type pthStorage struct {
	class     storageClass
	key       string
	numel     int
	data      []byte
	bigEndian bool
}

// pthTensor is a tensor as _rebuild_tensor_v2 describes it: a strided view of a storage.
type pthTensor struct {
	storage *pthStorage
	offset  int
	size    []int
	stride  []int
}

// funcCall is a Python function we interpret.
type funcCall func(args ...any) (any, error)

func (f funcCall) Call(args ...any) (any, error) { return f(args...) }

func rebuildTensor(args ...any) (any, error) {
	// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 called with %d arguments, want at least 4", len(args))
	}
	st, ok := args[0].(*pthStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: the first argument is %s, not a storage", describe(args[0]))
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: bad storage offset %s", describe(args[1]))
	}
	size, err1 := intTuple(args[2])
	stride, err2 := intTuple(args[3])
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %v", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in length", size, stride)
	}
	return &pthTensor{storage: st, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%s instead of a tuple of ints", describe(v))
	}
	out := make([]int, len(*t))
	for i, x := range *t {
		n, ok := x.(int)
		if !ok || n < 0 {
			return nil, fmt.Errorf("%s in a tuple of non-negative ints", describe(x))
		}
		out[i] = n
	}
	return out, nil
}

// codecsEncode is _codecs.encode(str, "latin1"): how protocol-2 pickles store bytes (numpy
// scalars in args, for instance).
func codecsEncode(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_codecs.encode called without arguments")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("_codecs.encode of %s", describe(args[0]))
	}
	if len(args) > 1 {
		if enc, _ := args[1].(string); enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1" {
			return nil, fmt.Errorf("_codecs.encode with encoding %q; only latin1 appears in pickles", enc)
		}
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("_codecs.encode: character %q is not latin1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// numpyScalar is numpy.core.multiarray.scalar(dtype, bytes): a numpy int, float or bool.
// Values it cannot interpret stay generic objects (they only matter if used as epoch or loss).
func numpyScalar(args ...any) (any, error) {
	generic := &pyObject{class: &pyClass{"numpy.core.multiarray", "scalar"}, args: args}
	if len(args) != 2 {
		return generic, nil
	}
	dt, ok := args[0].(*pyObject)
	if !ok || dt.class.name != "dtype" || len(dt.args) < 1 {
		return generic, nil
	}
	code, _ := dt.args[0].(string)
	var raw []byte
	switch b := args[1].(type) {
	case []byte:
		raw = b
	case *types.ByteArray:
		raw = *b
	default:
		return generic, nil
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if st, ok := dt.state.(*types.Tuple); ok && len(*st) > 1 && (*st)[1] == ">" {
		order = binary.BigEndian
	}
	if len(code) != 2 || int(code[1]-'0') != len(raw) {
		return generic, nil
	}
	switch code {
	case "f2":
		h := order.Uint16(raw)
		return float64(halfToFloat(h)), nil
	case "f4":
		return float64(math.Float32frombits(order.Uint32(raw))), nil
	case "f8":
		return math.Float64frombits(order.Uint64(raw)), nil
	case "i1":
		return int(int8(raw[0])), nil
	case "i2":
		return int(int16(order.Uint16(raw))), nil
	case "i4":
		return int(int32(order.Uint32(raw))), nil
	case "i8":
		return int(int64(order.Uint64(raw))), nil
	case "u1":
		return int(raw[0]), nil
	case "u2":
		return int(order.Uint16(raw)), nil
	case "u4":
		return int(order.Uint32(raw)), nil
	case "u8":
		if v := order.Uint64(raw); v <= math.MaxInt64 {
			return int(v), nil
		}
		return generic, nil
	case "b1":
		return raw[0] != 0, nil
	}
	return generic, nil
}

// findClass resolves the globals a torch.save pickle refers to. gopickle itself handles
// collections.OrderedDict, builtins and copy_reg before asking us.
func findClass(module, name string) (any, error) {
	switch {
	case module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor"):
		return funcCall(rebuildTensor), nil
	case module == "torch._utils" && (name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state"):
		// A saved nn.Parameter: keep its data tensor.
		return funcCall(func(args ...any) (any, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("_rebuild_parameter called without arguments")
			}
			return args[0], nil
		}), nil
	case module == "torch" && strings.HasSuffix(name, "Storage"):
		if sc, ok := storageClasses[name]; ok {
			return sc, nil
		}
	case module == "_codecs" && name == "encode":
		return funcCall(codecsEncode), nil
	case strings.HasSuffix(module, "multiarray") && name == "scalar":
		return funcCall(numpyScalar), nil
	}
	return &pyClass{module, name}, nil
}

// unpickle runs gopickle on one pickle that scanPickle has checked. The recover is a guard
// against bugs in the third-party unpickler on hostile input (for instance a bytes object used
// as a dict key makes it panic); our own code checks its inputs instead of relying on it.
func unpickle(p []byte, persistentLoad func(any) (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("corrupt pickle (the unpickler failed: %v)", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(p))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	return u.Load()
}

// persistentStorage interprets a persistent id ('storage', class, key, location, numel[, view]).
func persistentStorage(pid any, storages map[string]*pthStorage) (*pthStorage, bool, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || len(*t) < 5 {
		return nil, false, fmt.Errorf("unexpected persistent id %s", describe(pid))
	}
	tag, _ := (*t)[0].(string)
	if tag != "storage" {
		return nil, false, fmt.Errorf("unexpected persistent id of type %q (want storage)", tag)
	}
	sc, ok := (*t)[1].(storageClass)
	if !ok {
		return nil, false, fmt.Errorf("storage of unsupported type %s", describe((*t)[1]))
	}
	key, ok1 := (*t)[2].(string)
	numel, ok2 := (*t)[4].(int)
	if !ok1 || !ok2 || numel < 0 {
		return nil, false, fmt.Errorf("malformed storage reference %s", describe(pid))
	}
	if len(*t) > 5 && (*t)[5] != nil {
		return nil, false, fmt.Errorf("storage %q is a view of another storage (PyTorch < 0.4 files); re-save it with a recent PyTorch", key)
	}
	if st, ok := storages[key]; ok {
		if st.class != sc || st.numel != numel {
			return nil, false, fmt.Errorf("storage %q is referenced with two different types or sizes", key)
		}
		return st, false, nil
	}
	st := &pthStorage{class: sc, key: key, numel: numel}
	storages[key] = st
	return st, true, nil
}

// maxRecord bounds one zip record we read into memory (8 GiB is far above any model here).
const maxRecord = 8 << 30

func readRecord(f *zip.File, fileSize int) ([]byte, error) {
	size := f.UncompressedSize64
	limit := uint64(fileSize)
	if f.Method != zip.Store {
		limit = min(uint64(maxRecord), 1100*f.CompressedSize64+1024) // deflate expands at most ~1032×
	}
	if size > limit {
		return nil, fmt.Errorf("archive record %s claims %d bytes, impossible in a file of %d bytes", f.Name, size, fileSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("archive record %s: %v", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(size)+1))
	if err != nil {
		return nil, fmt.Errorf("archive record %s: %v", f.Name, err)
	}
	if uint64(len(b)) != size {
		return nil, fmt.Errorf("archive record %s holds %d bytes, its header says %d", f.Name, len(b), size)
	}
	return b, nil
}

// readZipPTH unpickles a zip-format torch.save file.
func readZipPTH(data []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("truncated or corrupt PyTorch zip checkpoint (%v)", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, f := range zr.File {
		records[f.Name] = f
		if path.Base(f.Name) == "data.pkl" && (pkl == nil || len(f.Name) < len(pkl.Name)) {
			pkl = f
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("a zip file without data.pkl: not a PyTorch checkpoint")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return nil, fmt.Errorf("a TorchScript archive (torch.jit.save); save the weights with torch.save(model.state_dict(), path) instead")
	}
	bigEndian := false
	if f, ok := records[prefix+"byteorder"]; ok {
		b, err := readRecord(f, len(data))
		if err != nil {
			return nil, err
		}
		switch s := strings.TrimSpace(string(b)); s {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("archive record %s says byte order %q", f.Name, s)
		}
	}
	p, err := readRecord(pkl, len(data))
	if err != nil {
		return nil, err
	}
	end, err := scanPickle(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", pkl.Name, err)
	}
	storages := map[string]*pthStorage{}
	load := func(pid any) (any, error) {
		st, isNew, err := persistentStorage(pid, storages)
		if err != nil || !isNew {
			return st, err
		}
		name := prefix + "data/" + st.key
		f, ok := records[name]
		if !ok {
			return nil, fmt.Errorf("storage %q: archive record %s is missing", st.key, name)
		}
		b, err := readRecord(f, len(data))
		if err != nil {
			return nil, err
		}
		if st.numel > len(b)/st.class.elemSize {
			return nil, fmt.Errorf("storage %q: archive record %s holds %d bytes, %d %s values need %d",
				st.key, name, len(b), st.numel, st.class.dtype, st.numel*st.class.elemSize)
		}
		st.data, st.bigEndian = b[:st.numel*st.class.elemSize], bigEndian
		return st, nil
	}
	v, err := unpickle(p[:end], load)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", pkl.Name, err)
	}
	return v, nil
}

// readLegacyPTH unpickles a legacy-format torch.save file.
func readLegacyPTH(data []byte) (any, error) {
	pos := 0
	next := func(what string, load func(any) (any, error)) (any, error) {
		end, err := scanPickle(data[pos:])
		if err != nil {
			return nil, fmt.Errorf("legacy PyTorch file, %s: %v", what, err)
		}
		v, err := unpickle(data[pos:pos+end], load)
		if err != nil {
			return nil, fmt.Errorf("legacy PyTorch file, %s: %v", what, err)
		}
		pos += end
		return v, nil
	}
	magic, err := next("magic number", nil)
	if m, ok := magic.(*big.Int); err != nil || !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("a Python pickle but not a PyTorch checkpoint (no torch.save magic number)")
	}
	proto, err := next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if proto != legacyProtocol {
		return nil, fmt.Errorf("legacy PyTorch file with protocol version %s; latentad reads version %d", describe(proto), legacyProtocol)
	}
	if _, err := next("system info", nil); err != nil {
		return nil, err
	}
	storages := map[string]*pthStorage{}
	obj, err := next("object", func(pid any) (any, error) {
		st, _, err := persistentStorage(pid, storages)
		return st, err
	})
	if err != nil {
		return nil, err
	}
	keysV, err := next("storage keys", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*types.List)
	if !ok {
		return nil, fmt.Errorf("legacy PyTorch file: storage keys are %s, not a list", describe(keysV))
	}
	// The storages follow in the order of the keys: an int64 element count, then the values,
	// always little-endian (PyTorch converts on big-endian hosts).
	for _, kv := range *keys {
		key, _ := kv.(string)
		st, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("legacy PyTorch file: storage %s is listed but never used", describe(kv))
		}
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("truncated legacy PyTorch file: storage %q is missing (file ends at byte %d)", key, len(data))
		}
		n := binary.LittleEndian.Uint64(data[pos:])
		pos += 8
		if n != uint64(st.numel) {
			return nil, fmt.Errorf("corrupt legacy PyTorch file: storage %q holds %d values, the pickle says %d", key, n, st.numel)
		}
		nb := st.numel * st.class.elemSize
		if nb > len(data)-pos {
			return nil, fmt.Errorf("truncated legacy PyTorch file: storage %q needs %d bytes, %d remain", key, nb, len(data)-pos)
		}
		st.data = data[pos : pos+nb]
		pos += nb
	}
	for key, st := range storages {
		if st.data == nil {
			return nil, fmt.Errorf("corrupt legacy PyTorch file: storage %q has no data", key)
		}
	}
	return obj, nil
}

// maxElements bounds one tensor's element count; maxExpanded bounds how far a view with zero
// strides (tensor.expand) may go beyond its storage, so a few hostile bytes cannot demand
// gigabytes.
const (
	maxElements = 1 << 31
	maxExpanded = 1 << 24
)

// array materialises a strided tensor as a dense float32 compute.Array. conv names the dtype
// when it had to be converted ("" for float32).
func (t *pthTensor) array() (a compute.Array, conv string, err error) {
	st := t.storage
	numel := 1
	for _, d := range t.size {
		if d == 0 {
			numel = 0
			break
		}
		if numel > maxElements/d {
			return a, "", fmt.Errorf("shape %v is too large", t.size)
		}
		numel *= d
	}
	if numel > st.numel && numel > maxExpanded {
		return a, "", fmt.Errorf("a view of %d elements over a storage of %d values; save a contiguous copy (tensor.clone())", numel, st.numel)
	}
	if numel > 0 {
		// The largest storage index the view touches must lie inside the storage; the
		// division keeps hostile sizes and strides from overflowing.
		beyond := fmt.Errorf("view (offset %d, size %v, stride %v) reaches beyond its storage of %d values", t.offset, t.size, t.stride, st.numel)
		if t.offset >= st.numel {
			return a, "", beyond
		}
		last := t.offset
		for i, d := range t.size {
			if d > 1 && t.stride[i] > 0 {
				if d-1 > (st.numel-1-last)/t.stride[i] {
					return a, "", beyond
				}
				last += (d - 1) * t.stride[i]
			}
		}
	}
	if st.data == nil {
		return a, "", fmt.Errorf("storage %q has no data", st.key)
	}
	get, err := elementReader(st)
	if err != nil {
		return a, "", err
	}
	a = compute.Array{Shape: append([]int{}, t.size...), Data: make([]float32, numel)}
	if numel == 0 {
		return a, convName(st.class.dtype), nil
	}
	// Walk the view in C order with an odometer over its indices.
	idx := make([]int, len(t.size))
	off := t.offset
	for i := range a.Data {
		a.Data[i] = get(off)
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			off += t.stride[k]
			if idx[k] < t.size[k] {
				break
			}
			off -= idx[k] * t.stride[k]
			idx[k] = 0
		}
	}
	return a, convName(st.class.dtype), nil
}

func convName(dtype string) string {
	if dtype == "F32" {
		return ""
	}
	return dtype
}

// elementReader returns a function reading element i of a storage as float32.
func elementReader(st *pthStorage) (func(int) float32, error) {
	b := st.data
	order := binary.ByteOrder(binary.LittleEndian)
	if st.bigEndian {
		order = binary.BigEndian
	}
	switch st.class.dtype {
	case "F32":
		return func(i int) float32 { return math.Float32frombits(order.Uint32(b[4*i:])) }, nil
	case "F64":
		return func(i int) float32 { return float32(math.Float64frombits(order.Uint64(b[8*i:]))) }, nil
	case "F16":
		return func(i int) float32 { return halfToFloat(order.Uint16(b[2*i:])) }, nil
	case "BF16":
		return func(i int) float32 { return math.Float32frombits(uint32(order.Uint16(b[2*i:])) << 16) }, nil
	}
	return nil, fmt.Errorf("a %s tensor; latentad's checkpoints hold float tensors", st.class.name)
}

// scalarValue reads a 0-d (or one-element) tensor as float64, keeping integer storages exact.
func (t *pthTensor) scalarValue() (float64, bool) {
	numel := 1
	for _, d := range t.size {
		numel *= d
	}
	st := t.storage
	if numel != 1 || t.offset >= st.numel || st.data == nil {
		return 0, false
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if st.bigEndian {
		order = binary.BigEndian
	}
	b := st.data[t.offset*st.class.elemSize:]
	switch st.class.dtype {
	case "F32":
		return float64(math.Float32frombits(order.Uint32(b))), true
	case "F64":
		return math.Float64frombits(order.Uint64(b)), true
	case "F16":
		return float64(halfToFloat(order.Uint16(b))), true
	case "BF16":
		return float64(math.Float32frombits(uint32(order.Uint16(b)) << 16)), true
	case "I64":
		return float64(int64(order.Uint64(b))), true
	case "I32":
		return float64(int32(order.Uint32(b))), true
	case "I16":
		return float64(int16(order.Uint16(b))), true
	case "I8":
		return float64(int8(b[0])), true
	case "U8", "BOOL":
		return float64(b[0]), true
	}
	return 0, false
}

// describe names a pickled value's type for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return fmt.Sprintf("the string %q", x)
	case int, float64, bool, *big.Int:
		return fmt.Sprintf("%v", x)
	case *pyObject:
		return "a " + x.class.qualname() + " object"
	case *pyClass:
		return "the Python name " + x.qualname()
	case *pthTensor:
		return fmt.Sprintf("a tensor of shape %v", x.size)
	case storageClass:
		return "torch." + x.name
	case *types.Tuple:
		return "a tuple"
	case *types.List:
		return "a list"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	}
	return fmt.Sprintf("a value of Go type %T", v)
}

// dictItems returns the entries of a pickled dict or OrderedDict, in order.
func dictItems(v any) ([]types.DictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		return *d, true
	case *types.OrderedDict:
		out := make([]types.DictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			out = append(out, types.DictEntry{Key: oe.Key, Value: oe.Value})
		}
		return out, true
	}
	return nil, false
}

// dictGet looks up a string key; a later duplicate wins, as in Python.
func dictGet(items []types.DictEntry, key string) (any, bool) {
	var v any
	found := false
	for _, e := range items {
		if k, ok := e.Key.(string); ok && k == key {
			v, found = e.Value, true
		}
	}
	return v, found
}

// toJSONable converts a pickled value to the JSON-able values of Checkpoint.Args: string,
// float64, int, bool, []any, map[string]any, nil. Other objects become a descriptive string.
func toJSONable(v any, depth int) any {
	if depth > maxConvertDepth {
		return "<nested too deeply>"
	}
	switch x := v.(type) {
	case nil, string, int, bool:
		return x
	case float64:
		return x
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	case []byte:
		return string(x)
	case *types.Tuple:
		return listJSON(*x, depth)
	case *types.List:
		return listJSON(*x, depth)
	case *types.Dict, *types.OrderedDict:
		items, _ := dictItems(x)
		m := make(map[string]any, len(items))
		for _, e := range items {
			m[fmt.Sprint(toJSONable(e.Key, depth+1))] = toJSONable(e.Value, depth+1)
		}
		return m
	case *pthTensor:
		if f, ok := x.scalarValue(); ok {
			return f
		}
		return fmt.Sprintf("<tensor of shape %v>", x.size)
	case *pyObject:
		if items, ok := dictItems(x.state); ok && x.class.qualname() == "argparse.Namespace" {
			return toJSONable((*types.Dict)(&items), depth+1)
		}
		return "<" + x.class.qualname() + " object>"
	}
	return fmt.Sprintf("<%s>", describe(v))
}

func listJSON(xs []any, depth int) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = toJSONable(x, depth+1)
	}
	return out
}

// argsMap turns the pickled args (a dict, or an argparse.Namespace) into a map.
func argsMap(v any) (map[string]any, bool) {
	if o, ok := v.(*pyObject); ok {
		v = o.state
	}
	items, ok := dictItems(v)
	if !ok {
		return nil, false
	}
	m, _ := toJSONable((*types.Dict)(&items), 0).(map[string]any)
	return m, true
}

// asInt reads an epoch-like value: a Python or numpy int, an integral float, a 0-d tensor.
func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x), true
		}
	case *pthTensor:
		if f, ok := x.scalarValue(); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int(f), true
		}
	}
	return 0, false
}

// asFloat reads a loss-like value: a Python or numpy float or int, a 0-d tensor.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case *pthTensor:
		return x.scalarValue()
	}
	return 0, false
}

// decodePTH reads a torch.save file held in data and interprets it as a checkpoint.
func decodePTH(data []byte) (*Checkpoint, error) {
	var top any
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("PK")):
		top, err = readZipPTH(data)
	case len(data) > 0 && data[0] == 0x80:
		top, err = readLegacyPTH(data)
	default:
		return nil, fmt.Errorf("not a PyTorch or latentad checkpoint (starts with %s)", quoteStart(data))
	}
	if err != nil {
		return nil, err
	}
	return fromPickle(top)
}

// modelKeys are the top-level keys under which a checkpoint dict may hold the state_dict; the
// seed uses "model".
var modelKeys = []string{"model", "state_dict", "model_state_dict"}

// fromPickle interprets the unpickled object: {"model": state_dict, …} or a bare state_dict.
func fromPickle(top any) (*Checkpoint, error) {
	if o, ok := top.(*pyObject); ok {
		return nil, fmt.Errorf("the file holds a pickled %s object, not a state_dict; save model.state_dict() instead", o.class.qualname())
	}
	items, ok := dictItems(top)
	if !ok {
		return nil, fmt.Errorf("the file holds %s, not a dict or state_dict", describe(top))
	}
	c := &Checkpoint{Config: map[string]int{}}
	sd := items
	var wrapped bool
	for _, k := range modelKeys {
		if v, ok := dictGet(items, k); ok {
			inner, ok := dictItems(v)
			if !ok {
				return nil, fmt.Errorf("%q holds %s, not a state_dict; save model.state_dict() under it", k, describe(v))
			}
			sd, wrapped = inner, true
			break
		}
	}
	if !wrapped && !allTensors(items) {
		return nil, fmt.Errorf("a PyTorch file, but neither a state_dict nor a dict with a \"model\" state_dict (top-level keys: %s)", keyList(items))
	}
	if err := c.readStateDict(sd); err != nil {
		return nil, err
	}

	var hasSchedule bool
	var args map[string]any
	if wrapped {
		used := map[string]bool{}
		for _, k := range modelKeys {
			used[k] = true
		}
		if v, ok := dictGet(items, "args"); ok {
			used["args"] = true
			if m, ok := argsMap(v); ok {
				args = m
			} else if v != nil {
				c.Notes = append(c.Notes, fmt.Sprintf("args ignored: %s is neither a dict nor an argparse.Namespace", describe(v)))
			}
		}
		// None counts as absent for epoch, loss and noise_schedule.
		used["epoch"], used["loss"], used["noise_schedule"] = true, true, true
		if v, _ := dictGet(items, "epoch"); v != nil {
			var ok bool
			if c.Epoch, ok = asInt(v); !ok {
				return nil, fmt.Errorf("\"epoch\" is %s, not an integer", describe(v))
			}
		}
		if v, _ := dictGet(items, "loss"); v != nil {
			var ok bool
			if c.Loss, ok = asFloat(v); !ok {
				return nil, fmt.Errorf("\"loss\" is %s, not a number", describe(v))
			}
		}
		if v, _ := dictGet(items, "noise_schedule"); v != nil {
			s, err := scheduleFrom(v)
			if err != nil {
				return nil, err
			}
			c.Schedule, hasSchedule = s, true
		}
		for _, k := range []string{"optimizer", "optimizer_state_dict", "optim"} {
			if v, ok := dictGet(items, k); ok {
				used[k] = true
				c.readOptimizer(v)
				break
			}
		}
		for _, e := range items {
			if k, ok := e.Key.(string); !ok || !used[k] {
				c.Notes = append(c.Notes, fmt.Sprintf("top-level entry %s ignored", describe(e.Key)))
			}
		}
	}
	c.Args = args
	c.infer(hasSchedule)
	return c, nil
}

func allTensors(items []types.DictEntry) bool {
	for _, e := range items {
		if _, ok := e.Value.(*pthTensor); !ok {
			return false
		}
	}
	return len(items) > 0
}

func keyList(items []types.DictEntry) string {
	ks := make([]string, 0, len(items))
	for _, e := range items {
		ks = append(ks, fmt.Sprint(toJSONable(e.Key, 0)))
	}
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

// readStateDict fills Model and Order from a state_dict.
func (c *Checkpoint) readStateDict(items []types.DictEntry) error {
	c.Model = make(map[string]compute.Array, len(items))
	conv := map[string][]string{}
	for _, e := range items {
		k, ok := e.Key.(string)
		if !ok {
			return fmt.Errorf("state_dict key %s is not a string", describe(e.Key))
		}
		t, ok := e.Value.(*pthTensor)
		if !ok {
			return fmt.Errorf("state_dict entry %q is %s, not a tensor", k, describe(e.Value))
		}
		a, cv, err := t.array()
		if err != nil {
			return fmt.Errorf("state_dict entry %q: %v", k, err)
		}
		if _, dup := c.Model[k]; !dup {
			c.Order = append(c.Order, k)
		}
		c.Model[k] = a
		if cv != "" {
			conv[cv] = append(conv[cv], k)
		}
	}
	c.noteConversions(conv)
	return nil
}

func (c *Checkpoint) noteConversions(conv map[string][]string) {
	dts := make([]string, 0, len(conv))
	for dt := range conv {
		dts = append(dts, dt)
	}
	sort.Strings(dts)
	for _, dt := range dts {
		c.Notes = append(c.Notes, fmt.Sprintf("converted %d %s tensor(s) to float32: %s", len(conv[dt]), dt, strings.Join(conv[dt], ", ")))
	}
}

// scheduleFrom reads {"timesteps": T, "schedule_type": "linear"|"cosine"}.
func scheduleFrom(v any) (*Schedule, error) {
	items, ok := dictItems(v)
	if !ok {
		return nil, fmt.Errorf("\"noise_schedule\" is %s, not a dict", describe(v))
	}
	s := &Schedule{Timesteps: 1000, Type: "cosine"}
	if t, ok := dictGet(items, "timesteps"); ok {
		if s.Timesteps, ok = asInt(t); !ok {
			return nil, fmt.Errorf("noise_schedule timesteps is %s, not an integer", describe(t))
		}
	}
	if t, ok := dictGet(items, "schedule_type"); ok {
		if s.Type, ok = t.(string); !ok {
			return nil, fmt.Errorf("noise_schedule schedule_type is %s, not a string", describe(t))
		}
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("noise_schedule: %v", err)
	}
	return s, nil
}

// readOptimizer maps torch.optim.Adam's state_dict onto parameter names. Adam's state is keyed
// by the parameter's index in model.parameters(), which for latentad's models is state_dict
// order. Anything that does not fit leaves Optim nil with a note: the weights are still usable.
func (c *Checkpoint) readOptimizer(v any) {
	skip := func(format string, a ...any) {
		c.Optim = nil
		c.Notes = append(c.Notes, "optimizer state not used: "+fmt.Sprintf(format, a...))
	}
	items, ok := dictItems(v)
	if !ok {
		skip("it is %s, not an optimizer state_dict", describe(v))
		return
	}
	stateV, _ := dictGet(items, "state")
	groupsV, _ := dictGet(items, "param_groups")
	state, ok1 := dictItems(stateV)
	groups, ok2 := groupsV.(*types.List)
	if !ok1 || !ok2 {
		skip("it lacks \"state\" or \"param_groups\"")
		return
	}
	var ids []int
	o := &OptimState{ExpAvg: map[string]compute.Array{}, ExpAvgSq: map[string]compute.Array{}}
	for gi, g := range *groups {
		gitems, ok := dictItems(g)
		if !ok {
			skip("param group %d is not a dict", gi)
			return
		}
		ps, _ := dictGet(gitems, "params")
		pl, ok := ps.(*types.List)
		if !ok {
			skip("param group %d has no list of params", gi)
			return
		}
		for _, p := range *pl {
			id, ok := p.(int)
			if !ok {
				skip("param group %d lists %s as a parameter", gi, describe(p))
				return
			}
			ids = append(ids, id)
		}
		if gi == 0 {
			readHyper(o, gitems)
		} else if len(*groups) > 1 && gi == 1 {
			c.Notes = append(c.Notes, fmt.Sprintf("optimizer has %d param groups; their hyper-parameters are taken from the first", len(*groups)))
		}
	}
	if len(ids) != len(c.Order) {
		skip("it has %d parameters, the model %d tensors", len(ids), len(c.Order))
		return
	}
	byID := map[int]string{}
	for i, id := range ids {
		byID[id] = c.Order[i]
	}
	step := -1
	for _, e := range state {
		id, ok := e.Key.(int)
		name, known := byID[id]
		if !ok || !known {
			skip("state for unknown parameter %s", describe(e.Key))
			return
		}
		ps, ok := dictItems(e.Value)
		if !ok {
			skip("state of %q is not a dict", name)
			return
		}
		if _, ok := dictGet(ps, "max_exp_avg_sq"); ok {
			skip("it is AMSGrad state, which latentad's Adam does not implement")
			return
		}
		sv, _ := dictGet(ps, "step")
		s, ok := asInt(sv)
		if !ok {
			skip("state of %q has step %s", name, describe(sv))
			return
		}
		if step >= 0 && s != step {
			skip("parameters have different step counts (%d and %d)", step, s)
			return
		}
		step = s
		for _, m := range []struct {
			key string
			dst map[string]compute.Array
		}{{"exp_avg", o.ExpAvg}, {"exp_avg_sq", o.ExpAvgSq}} {
			tv, _ := dictGet(ps, m.key)
			t, ok := tv.(*pthTensor)
			if !ok {
				skip("state of %q has no %s tensor", name, m.key)
				return
			}
			a, _, err := t.array()
			if err != nil {
				skip("state of %q, %s: %v", name, m.key, err)
				return
			}
			if !sameShape(a.Shape, c.Model[name].Shape) {
				skip("%s of %q has shape %v, the parameter %v", m.key, name, a.Shape, c.Model[name].Shape)
				return
			}
			m.dst[name] = a
		}
	}
	// Parameters Adam has not stepped yet have no state: their moments are zero.
	for _, name := range c.Order {
		if _, ok := o.ExpAvg[name]; !ok {
			o.ExpAvg[name] = compute.NewArray(c.Model[name].Shape...)
			o.ExpAvgSq[name] = compute.NewArray(c.Model[name].Shape...)
		}
	}
	o.Step = max(step, 0)
	c.Optim = o
}

func readHyper(o *OptimState, g []types.DictEntry) {
	if v, ok := dictGet(g, "lr"); ok {
		o.LR, _ = asFloat(v)
	}
	if v, ok := dictGet(g, "eps"); ok {
		o.Eps, _ = asFloat(v)
	}
	if v, ok := dictGet(g, "weight_decay"); ok {
		o.WeightDecay, _ = asFloat(v)
	}
	if v, ok := dictGet(g, "betas"); ok {
		if t, ok := v.(*types.Tuple); ok && len(*t) == 2 {
			o.Betas[0], _ = asFloat((*t)[0])
			o.Betas[1], _ = asFloat((*t)[1])
		}
	}
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
