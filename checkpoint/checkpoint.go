// Package checkpoint reads and writes model checkpoints: PyTorch .pth files as the seed's
// training scripts wrote them (torch.save, zip or legacy format), and latentad's own format.
//
// The native format is a safetensors file holding only the model's tensors, float32, under
// PyTorch's state_dict key names, so that in Python
//
//	model.load_state_dict(safetensors.torch.load_file(path))
//
// works strictly. Everything else sits in the safetensors "__metadata__" as one JSON document
// under the key "latentad": {"format_version": 1, "kind", "config", "noise_schedule", "epoch",
// "loss", "args", "extra", "optim"}. Adam's state sits beside the model in
// OptimPath(path) = <path without .safetensors>.optim.safetensors, tensors "exp_avg.<name>" and
// "exp_avg_sq.<name>", its step and hyper-parameters in that file's metadata. The two files carry
// the same random save id, so a model is never paired with another save's optimiser state.
// Writes are atomic: both files go to temporary files in the same directory and are fsynced
// before either is renamed over its old version (optimiser file first), then the directory is
// fsynced; a failed or interrupted write leaves the previous checkpoint loadable.
//
// Load tells the formats apart by content, not by file name. Tensors of other float types
// (float64, float16, bfloat16) are converted to float32 and the conversion is listed in
// Checkpoint.Notes.
package checkpoint

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/latentad/latentad/compute"
)

// Schedule is a DDPM noise schedule.
type Schedule struct {
	Timesteps int
	Type      string // "linear" | "cosine"
}

func (s *Schedule) validate() error {
	if s.Timesteps <= 0 {
		return fmt.Errorf("timesteps %d: want a positive number", s.Timesteps)
	}
	if s.Type != "linear" && s.Type != "cosine" {
		return fmt.Errorf("schedule type %q: want linear or cosine", s.Type)
	}
	return nil
}

// Checkpoint is a model with what a run knows about it.
type Checkpoint struct {
	Kind     string                   // "fm" | "ddpm" | "ae"; "" when a .pth does not say (caller decides/asks)
	Config   map[string]int           // in_channels, base_channels, time_dim, num_res_blocks; for the AE in_channels and base
	Schedule *Schedule                // DDPM only
	Epoch    int                      // 0 when the file does not say
	Loss     float64                  // 0 when the file does not say
	Args     map[string]any           // the run's arguments: string, float64, int, bool, []any, map[string]any, nil
	Model    map[string]compute.Array // PyTorch state_dict keys and shapes
	Optim    *OptimState              // nil when absent or unusable (Notes says why)
	Extra    map[string]string        // trainer's own state (e.g. RNG state for exact resume)
	Path     string                   // where it was loaded from

	// Order is the state_dict key order when known (Load fills it from the file). Save writes
	// the tensors in this order when it lists exactly Model's keys, else in sorted order.
	Order []string
	// Notes lists what loading did that a user may want to know: dtype conversions, ignored
	// entries, optimiser state that could not be used. Save ignores it.
	Notes []string
}

// OptimState is Adam's state, keyed by parameter name.
type OptimState struct {
	Step             int
	ExpAvg, ExpAvgSq map[string]compute.Array
	// Hyper-parameters as saved (zero when unknown).
	LR          float64
	Betas       [2]float64
	Eps         float64
	WeightDecay float64
}

// formatVersion is the version of the native metadata document this package writes.
const formatVersion = 1

// OptimPath is the file beside a native checkpoint that holds its optimiser state.
func OptimPath(path string) string {
	return strings.TrimSuffix(path, ".safetensors") + ".optim.safetensors"
}

// readInput reads a whole checkpoint file, with errors that name it.
func readInput(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such checkpoint file", path)
		}
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, not a checkpoint file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty file, not a checkpoint", path)
	}
	return data, nil
}

// Load reads a native latentad checkpoint (with its optimiser file when present), a plain
// safetensors state_dict, or a PyTorch .pth (zip or legacy), telling them apart by content.
func Load(path string) (*Checkpoint, error) {
	data, err := readInput(path)
	if err != nil {
		return nil, err
	}
	var c *Checkpoint
	if looksSafetensors(data) {
		c, err = decodeNative(path, data)
	} else {
		c, err = decodePTH(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// LoadPTH reads a PyTorch checkpoint written by torch.save: {"model": state_dict, "args",
// "epoch", "loss", "optimizer", "noise_schedule"} or a bare state_dict, zip or legacy format.
//
// Kind is inferred from the content: enc.*/dec.* keys → "ae"; a noise_schedule entry → "ddpm";
// velocity-model keys (input_conv.weight) with args that name timesteps or schedule_type →
// "ddpm" (Schedule from those args, SPEC defaults 1000/cosine for the one missing), with other
// args → "fm"; a bare state_dict of the velocity model → "" (the weights of flow matching and
// DDPM models look alike: the caller decides). Config comes from the weight shapes
// (input_conv.weight: base_channels × in_channels; res_blocks.0.time_mlp.mlp.0.weight: time_dim;
// the number of res_blocks; enc.0.weight for the AE's base and in_channels); args fill what the
// weights cannot tell, and a disagreement between them is noted in Notes.
func LoadPTH(path string) (*Checkpoint, error) {
	data, err := readInput(path)
	if err != nil {
		return nil, err
	}
	c, err := decodePTH(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// looksSafetensors: an 8-byte length followed by the JSON header's opening brace.
func looksSafetensors(data []byte) bool {
	return len(data) > 8 && data[8] == '{'
}

// CheckShapes compares the model tensors with what a network expects and lists every missing,
// unexpected and mis-shaped key in one error.
func (c *Checkpoint) CheckShapes(want map[string][]int) error {
	var missing, unexpected, shapes []string
	for k, s := range want {
		a, ok := c.Model[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !sameShape(a.Shape, s):
			shapes = append(shapes, fmt.Sprintf("%s is %v, the model wants %v", k, a.Shape, s))
		}
	}
	for k := range c.Model {
		if _, ok := want[k]; !ok {
			unexpected = append(unexpected, k)
		}
	}
	if len(missing)+len(unexpected)+len(shapes) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Strings(shapes)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing keys: "+strings.Join(missing, ", "))
	}
	if len(unexpected) > 0 {
		parts = append(parts, "unexpected keys: "+strings.Join(unexpected, ", "))
	}
	if len(shapes) > 0 {
		parts = append(parts, "mis-shaped: "+strings.Join(shapes, "; "))
	}
	name := c.Path
	if name == "" {
		name = "checkpoint"
	}
	return fmt.Errorf("%s does not fit the model: %s", name, strings.Join(parts, "; "))
}

// infer fills Kind, Schedule and Config of a checkpoint read from a .pth or a plain
// safetensors file (rules in LoadPTH's comment).
func (c *Checkpoint) infer(hasSchedule bool) {
	ae, vel := false, false
	for k := range c.Model {
		if strings.HasPrefix(k, "enc.") || strings.HasPrefix(k, "dec.") {
			ae = true
		}
	}
	_, vel = c.Model["input_conv.weight"]
	_, argT := c.Args["timesteps"]
	_, argS := c.Args["schedule_type"]
	switch {
	case ae:
		c.Kind = "ae"
	case hasSchedule:
		c.Kind = "ddpm"
	case vel && (argT || argS):
		c.Kind = "ddpm"
		s := &Schedule{Timesteps: 1000, Type: "cosine"}
		if v, ok := c.Args["timesteps"].(int); ok {
			s.Timesteps = v
		} else if argT {
			c.Notes = append(c.Notes, fmt.Sprintf("args timesteps %v is not an integer; using 1000", c.Args["timesteps"]))
		}
		if v, ok := c.Args["schedule_type"].(string); ok {
			s.Type = v
		} else if argS {
			c.Notes = append(c.Notes, fmt.Sprintf("args schedule_type %v is not a string; using cosine", c.Args["schedule_type"]))
		}
		if err := s.validate(); err != nil {
			c.Notes = append(c.Notes, "no noise schedule: args give "+err.Error())
		} else {
			c.Schedule = s
		}
	case vel && c.Args != nil:
		c.Kind = "fm"
	}
	c.inferConfig()
}

// inferConfig reads the architecture from the weight shapes, then fills gaps from args.
func (c *Checkpoint) inferConfig() {
	if c.Config == nil {
		c.Config = map[string]int{}
	}
	var fromArgs []string
	if w, ok := c.Model["input_conv.weight"]; ok && len(w.Shape) == 5 {
		c.Config["base_channels"] = w.Shape[0]
		c.Config["in_channels"] = w.Shape[1]
		blocks := map[int]bool{}
		for k := range c.Model {
			if rest, ok := strings.CutPrefix(k, "res_blocks."); ok {
				if i, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0]); err == nil && i >= 0 {
					blocks[i] = true
				}
			}
		}
		c.Config["num_res_blocks"] = len(blocks)
		if t, ok := c.Model["res_blocks.0.time_mlp.mlp.0.weight"]; ok && len(t.Shape) == 2 {
			c.Config["time_dim"] = t.Shape[1]
		}
		fromArgs = []string{"in_channels", "base_channels", "time_dim", "num_res_blocks"}
	} else if w, ok := c.Model["enc.0.weight"]; ok && len(w.Shape) == 5 {
		c.Config["base"] = w.Shape[0]
		c.Config["in_channels"] = w.Shape[1]
		fromArgs = []string{"in_channels", "base"}
	}
	for _, k := range fromArgs {
		v, ok := c.Args[k].(int)
		if !ok {
			continue
		}
		if have, ok := c.Config[k]; !ok {
			c.Config[k] = v
		} else if have != v {
			c.Notes = append(c.Notes, fmt.Sprintf("args say %s %d, the weights %d; using the weights", k, v, have))
		}
	}
}

// nativeDoc is the JSON document under "latentad" in a native checkpoint's metadata.
type nativeDoc struct {
	FormatVersion int               `json:"format_version"`
	Kind          string            `json:"kind"`
	Config        map[string]int    `json:"config"`
	NoiseSchedule *nativeSchedule   `json:"noise_schedule"`
	Epoch         int               `json:"epoch"`
	Loss          json.RawMessage   `json:"loss"`
	Args          map[string]any    `json:"args"`
	Extra         map[string]string `json:"extra"`
	Optim         *optimRef         `json:"optim"`
}

type nativeSchedule struct {
	Timesteps    int    `json:"timesteps"`
	ScheduleType string `json:"schedule_type"`
}

// optimRef links a model file to its optimiser file.
type optimRef struct {
	File   string `json:"file"` // base name, for people reading the metadata
	SaveID string `json:"save_id"`
}

// optimDoc is the JSON document under "latentad_optim" in the optimiser file.
type optimDoc struct {
	FormatVersion int        `json:"format_version"`
	SaveID        string     `json:"save_id"`
	Step          int        `json:"step"`
	LR            float64    `json:"lr"`
	Betas         [2]float64 `json:"betas"`
	Eps           float64    `json:"eps"`
	WeightDecay   float64    `json:"weight_decay"`
}

const (
	metaKey      = "latentad"
	optimMetaKey = "latentad_optim"
)

// Save writes c in the native format: OptimPath(path) first when c.Optim is set, then path,
// each atomically. Without optimiser state, a stale optimiser file of an earlier save is removed.
func Save(path string, c *Checkpoint) error {
	if c == nil {
		return fmt.Errorf("%s: no checkpoint to save", path)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s: is a directory; give a file name for the checkpoint", path)
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("%s: cannot save: %v", path, err)
	}
	doc := nativeDoc{
		FormatVersion: formatVersion,
		Kind:          c.Kind,
		Config:        c.Config,
		Epoch:         c.Epoch,
		Loss:          floatJSON(c.Loss),
		Extra:         c.Extra,
	}
	if c.Schedule != nil {
		doc.NoiseSchedule = &nativeSchedule{c.Schedule.Timesteps, c.Schedule.Type}
	}
	args, err := encodeArgs(c.Args)
	if err != nil {
		return fmt.Errorf("%s: cannot save: %v", path, err)
	}
	names := orderedNames(c.Model, c.Order)
	optPath := OptimPath(path)
	// Both files are written and synced before either replaces its old version, so a failed
	// write leaves the previous pair intact; the renames follow, optimiser file first.
	var files []pending
	if c.Optim != nil {
		id, err := newSaveID()
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		doc.Optim = &optimRef{File: filepath.Base(optPath), SaveID: id}
		p, err := prepareOptim(optPath, id, names, c.Optim)
		if err != nil {
			return err
		}
		files = append(files, p)
	}
	meta, err := marshalDoc(doc, args)
	if err != nil {
		discard(files...)
		return fmt.Errorf("%s: cannot save: %v", path, err)
	}
	p, err := prepare(path, func(w io.Writer) error {
		return encodeSafetensors(w, names, c.Model, map[string]string{"format": "pt", metaKey: meta})
	})
	if err != nil {
		discard(files...)
		return err
	}
	if err := commit(append(files, p)...); err != nil {
		return err
	}
	if c.Optim == nil {
		// An optimiser file of an earlier save would otherwise look like this one's; the model
		// no longer refers to it, so removing it after the rename is safe.
		if err := os.Remove(optPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: cannot remove the optimiser state of an earlier save: %v", optPath, err)
		}
	}
	return nil
}

func newSaveID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("no random save id: %v", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// validate checks what Save would otherwise write wrongly.
func (c *Checkpoint) validate() error {
	switch c.Kind {
	case "", "fm", "ddpm", "ae":
	default:
		return fmt.Errorf("kind %q: want fm, ddpm, ae or empty", c.Kind)
	}
	if c.Schedule != nil {
		if err := c.Schedule.validate(); err != nil {
			return fmt.Errorf("noise schedule: %v", err)
		}
	}
	for k, a := range c.Model {
		if k == "" || k == "__metadata__" {
			return fmt.Errorf("model tensor name %q is not allowed", k)
		}
		if err := a.Check(); err != nil {
			return fmt.Errorf("model tensor %q: %v", k, err)
		}
	}
	if o := c.Optim; o != nil {
		for _, m := range []struct {
			what string
			arr  map[string]compute.Array
		}{{"exp_avg", o.ExpAvg}, {"exp_avg_sq", o.ExpAvgSq}} {
			if len(m.arr) != len(c.Model) {
				return fmt.Errorf("optimiser %s has %d tensors, the model %d", m.what, len(m.arr), len(c.Model))
			}
			for k, a := range m.arr {
				p, ok := c.Model[k]
				if !ok {
					return fmt.Errorf("optimiser %s for %q, which the model does not have", m.what, k)
				}
				if err := a.Check(); err != nil {
					return fmt.Errorf("optimiser %s of %q: %v", m.what, k, err)
				}
				if !sameShape(a.Shape, p.Shape) {
					return fmt.Errorf("optimiser %s of %q has shape %v, the parameter %v", m.what, k, a.Shape, p.Shape)
				}
			}
		}
	}
	return nil
}

func prepareOptim(path, id string, names []string, o *OptimState) (pending, error) {
	doc := optimDoc{FormatVersion: formatVersion, SaveID: id, Step: o.Step, LR: o.LR, Betas: o.Betas, Eps: o.Eps, WeightDecay: o.WeightDecay}
	for _, f := range []float64{o.LR, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return pending{}, fmt.Errorf("%s: cannot save optimiser hyper-parameter %v", path, f)
		}
	}
	meta, err := json.Marshal(doc)
	if err != nil {
		return pending{}, fmt.Errorf("%s: %v", path, err)
	}
	tensors := make(map[string]compute.Array, 2*len(names))
	onames := make([]string, 0, 2*len(names))
	for _, n := range names {
		tensors["exp_avg."+n] = o.ExpAvg[n]
		onames = append(onames, "exp_avg."+n)
	}
	for _, n := range names {
		tensors["exp_avg_sq."+n] = o.ExpAvgSq[n]
		onames = append(onames, "exp_avg_sq."+n)
	}
	return prepare(path, func(w io.Writer) error {
		return encodeSafetensors(w, onames, tensors, map[string]string{optimMetaKey: string(meta)})
	})
}

// decodeNative reads a safetensors checkpoint; without latentad metadata it is treated as a
// bare state_dict.
func decodeNative(path string, data []byte) (*Checkpoint, error) {
	f, err := decodeSafetensors(data)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Config: map[string]int{}}
	c.Model, c.Order = tensorsOf(f, "", c)
	meta, ok := f.metadata[metaKey]
	if !ok {
		c.Notes = append(c.Notes, "a safetensors file without latentad metadata: kind and config inferred from the weights")
		c.infer(false)
		return c, nil
	}
	var doc nativeDoc
	dec := json.NewDecoder(strings.NewReader(meta))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("corrupt latentad metadata: %v", err)
	}
	if doc.FormatVersion > formatVersion || doc.FormatVersion < 1 {
		return nil, fmt.Errorf("latentad metadata format_version %d; this latentad reads version %d (update latentad)", doc.FormatVersion, formatVersion)
	}
	c.Kind, c.Epoch, c.Extra = doc.Kind, doc.Epoch, doc.Extra
	if doc.Config != nil {
		c.Config = doc.Config
	}
	if doc.NoiseSchedule != nil {
		c.Schedule = &Schedule{Timesteps: doc.NoiseSchedule.Timesteps, Type: doc.NoiseSchedule.ScheduleType}
		if err := c.Schedule.validate(); err != nil {
			return nil, fmt.Errorf("latentad metadata: noise_schedule: %v", err)
		}
	}
	if c.Loss, err = parseFloatJSON(doc.Loss); err != nil {
		return nil, fmt.Errorf("latentad metadata: loss: %v", err)
	}
	if doc.Args != nil {
		c.Args = decodeArgs(doc.Args).(map[string]any)
	}
	if doc.Optim != nil {
		c.loadOptim(OptimPath(path), doc.Optim.SaveID)
	}
	return c, nil
}

// tensorsOf collects the tensors of a decoded file whose names start with prefix (stripped),
// noting dtype conversions.
func tensorsOf(f *stFile, prefix string, c *Checkpoint) (map[string]compute.Array, []string) {
	m := map[string]compute.Array{}
	var order []string
	conv := map[string][]string{}
	for _, t := range f.tensors {
		name, ok := strings.CutPrefix(t.name, prefix)
		if !ok {
			continue
		}
		m[name] = t.array
		order = append(order, name)
		if t.dtype != "F32" {
			conv[t.dtype] = append(conv[t.dtype], t.name)
		}
	}
	c.noteConversions(conv)
	return m, order
}

// loadOptim reads the optimiser file of a native checkpoint. The weights are usable without
// it, so problems leave Optim nil and say why in Notes.
func (c *Checkpoint) loadOptim(path, id string) {
	skip := func(format string, a ...any) {
		c.Notes = append(c.Notes, "optimiser state not loaded: "+fmt.Sprintf(format, a...))
	}
	data, err := readInput(path)
	if err != nil {
		skip("%v", err)
		return
	}
	f, err := decodeSafetensors(data)
	if err != nil {
		skip("%s: %v", path, err)
		return
	}
	var doc optimDoc
	if err := json.Unmarshal([]byte(f.metadata[optimMetaKey]), &doc); err != nil {
		skip("%s: no or corrupt %s metadata (%v)", path, optimMetaKey, err)
		return
	}
	if doc.SaveID != id {
		skip("%s belongs to another save (id %q, the model's is %q): a save was interrupted; resuming needs a matching pair", path, doc.SaveID, id)
		return
	}
	o := &OptimState{Step: doc.Step, LR: doc.LR, Betas: doc.Betas, Eps: doc.Eps, WeightDecay: doc.WeightDecay}
	scratch := &Checkpoint{}
	o.ExpAvg, _ = tensorsOf(f, "exp_avg.", scratch)
	o.ExpAvgSq, _ = tensorsOf(f, "exp_avg_sq.", scratch)
	for name, p := range c.Model {
		for _, m := range []map[string]compute.Array{o.ExpAvg, o.ExpAvgSq} {
			a, ok := m[name]
			if !ok || !sameShape(a.Shape, p.Shape) {
				skip("%s lacks the state of %q or has the wrong shape", path, name)
				return
			}
		}
	}
	if len(o.ExpAvg) != len(c.Model) || len(o.ExpAvgSq) != len(c.Model) {
		skip("%s holds state for parameters the model does not have", path)
		return
	}
	c.Optim = o
}

// marshalDoc encodes the metadata document; args are already encoded.
func marshalDoc(doc nativeDoc, args map[string]any) (string, error) {
	if args != nil {
		doc.Args = args
	}
	b, err := json.Marshal(doc)
	return string(b), err
}

// floatJSON writes a float so that it reads back exactly; JSON has no NaN or Inf, so those
// become strings.
func floatJSON(f float64) json.RawMessage {
	switch {
	case math.IsNaN(f):
		return json.RawMessage(`"NaN"`)
	case math.IsInf(f, 1):
		return json.RawMessage(`"+Inf"`)
	case math.IsInf(f, -1):
		return json.RawMessage(`"-Inf"`)
	}
	return json.RawMessage(floatText(f))
}

// floatText formats a finite float with a decimal point or exponent, so it reads back as a
// float and not as an int.
func floatText(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func parseFloatJSON(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "+Inf", "Inf":
			return math.Inf(1), nil
		case "-Inf":
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseFloat(string(raw), 64)
}

// encodeArgs prepares args for JSON: floats keep a decimal point (so 1.0 stays a float), NaN
// and Inf become strings, ints stay ints.
func encodeArgs(args map[string]any) (map[string]any, error) {
	if args == nil {
		return nil, nil
	}
	v, err := encodeArg(args, "args", 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func encodeArg(v any, where string, depth int) (any, error) {
	if depth > maxConvertDepth {
		return nil, fmt.Errorf("%s: nested too deeply", where)
	}
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case int:
		return json.Number(strconv.Itoa(x)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case uint:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), nil
	case float32:
		return encodeArg(float64(x), where, depth)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return string(floatJSON(x)[1 : len(floatJSON(x))-1]), nil
		}
		return json.Number(floatText(x)), nil
	case json.Number:
		return x, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = encodeArg(e, fmt.Sprintf("%s[%d]", where, i), depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []int:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = json.Number(strconv.Itoa(e))
		}
		return out, nil
	case []float64:
		out := make([]any, len(x))
		for i, e := range x {
			out[i], _ = encodeArg(e, where, depth+1)
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var err error
			if out[k], err = encodeArg(e, where+"."+k, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: a %T cannot be saved (use string, int, float64, bool, nil, slices or maps of them)", where, v)
}

// decodeArgs turns json.Numbers back into int (no decimal point or exponent) or float64.
func decodeArgs(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.Atoi(s); err == nil {
				return i
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case []any:
		for i := range x {
			x[i] = decodeArgs(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = decodeArgs(x[k])
		}
		return x
	}
	return v
}

// wrapWriter lets tests make writes fail part-way, as a crash or a full disk would.
var wrapWriter func(io.Writer) io.Writer

// pending is a fully written and fsynced temporary file waiting to be renamed over path.
type pending struct{ tmp, path string }

// prepare writes a temporary file beside path and fsyncs it; path itself is untouched.
func prepare(path string, write func(io.Writer) error) (p pending, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return p, fmt.Errorf("%s: cannot create a temporary file beside it: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	if wrapWriter != nil {
		w = wrapWriter(w)
	}
	if err = write(w); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return p, fmt.Errorf("%s: write failed, the previous file is unchanged: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return p, fmt.Errorf("%s: fsync failed, the previous file is unchanged: %w", path, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return pending{tmp, path}, nil
}

// discard removes prepared files that will not be committed.
func discard(ps ...pending) {
	for _, p := range ps {
		if p.tmp != "" {
			os.Remove(p.tmp)
		}
	}
}

// commit renames prepared files into place, in order, then fsyncs their directory: the
// renames are durable only once the directory is synced.
func commit(ps ...pending) error {
	for i, p := range ps {
		if err := os.Rename(p.tmp, p.path); err != nil {
			discard(ps[i:]...)
			return fmt.Errorf("%s: cannot rename the new file into place: %w", p.path, err)
		}
	}
	dirs := map[string]bool{}
	for _, p := range ps {
		dir := filepath.Dir(p.path)
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		if d, err := os.Open(dir); err == nil {
			serr := d.Sync()
			d.Close()
			// Some file systems cannot sync a directory (EINVAL); the rename has happened.
			if serr != nil && !errors.Is(serr, syscall.EINVAL) && !errors.Is(serr, syscall.ENOTSUP) {
				return fmt.Errorf("%s: written, but syncing its directory failed: %w", p.path, serr)
			}
		}
	}
	return nil
}
