package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/latentad/latentad/compute"
)

// Param is one named parameter: views into its ParamSet's flat value and gradient tensors.
// Name is the PyTorch state_dict key (e.g. "res_blocks.0.conv1.weight").
type Param struct {
	Name        string
	Value, Grad *compute.Tensor
}

// ParamSet is all parameters of a model. List is in PyTorch state_dict order; Value and
// Grad are the flat tensors every Param views, laid out in that order.
type ParamSet struct {
	List        []Param
	Value, Grad *compute.Tensor
}

// Count returns the number of scalars.
func (ps *ParamSet) Count() int {
	if ps.Value == nil {
		return 0
	}
	return ps.Value.Len()
}

// Find returns the parameter with the given state_dict key.
func (ps *ParamSet) Find(name string) (Param, bool) {
	for _, p := range ps.List {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// StateDict downloads the values into one Array per key (fresh copies).
func (ps *ParamSet) StateDict() map[string]compute.Array {
	return ps.split(ps.Value)
}

// StateView is StateDict for reading at once: on a device whose tensors are host memory
// (compute.HostMemory) the arrays alias the parameters instead of copying them, valid
// until the parameters next change. A checkpoint save uses it, so that writing one does
// not hold a second copy of the model and its optimiser state.
func (ps *ParamSet) StateView() map[string]compute.Array {
	return ps.view(ps.Value)
}

// GradDict downloads the gradients into one Array per key (fresh copies).
func (ps *ParamSet) GradDict() map[string]compute.Array {
	return ps.split(ps.Grad)
}

// split downloads a flat tensor laid out like Value and cuts it per parameter.
func (ps *ParamSet) split(flat *compute.Tensor) map[string]compute.Array {
	if flat == nil {
		return map[string]compute.Array{}
	}
	return ps.cut(compute.ToHost(flat))
}

// view is split without the download where the device's memory is the host's.
func (ps *ParamSet) view(flat *compute.Tensor) map[string]compute.Array {
	if flat != nil {
		if hm, ok := flat.Device().(compute.HostMemory); ok {
			return ps.cut(hm.HostSlice(flat))
		}
	}
	return ps.split(flat)
}

// cut slices host, laid out like Value, per parameter. The arrays share host (each
// capacity-limited, so appending to one cannot reach the next) rather than being copied
// once more.
func (ps *ParamSet) cut(host []float32) map[string]compute.Array {
	out := make(map[string]compute.Array, len(ps.List))
	for _, p := range ps.List {
		off := p.Value.Offset() - ps.Value.Offset()
		end := off + p.Value.Len()
		out[p.Name] = compute.Array{Shape: slices.Clone(p.Value.Shape()), Data: host[off:end:end]}
	}
	return out
}

// LoadStateDict uploads sd into the parameters. sd must hold exactly the model's keys with
// the model's shapes; otherwise nothing is changed and the error lists every missing,
// unexpected and mis-shaped key.
func (ps *ParamSet) LoadStateDict(sd map[string]compute.Array) error {
	host, err := ps.join(sd, "state dict")
	if err != nil {
		return err
	}
	ps.Value.Device().Upload(ps.Value, host)
	return nil
}

// join checks sd against the parameter list and lays it out flat (in Value's order).
func (ps *ParamSet) join(sd map[string]compute.Array, what string) ([]float32, error) {
	var missing, unexpected, misshaped []string
	host := make([]float32, ps.Count())
	known := make(map[string]bool, len(ps.List))
	for _, p := range ps.List {
		known[p.Name] = true
		a, ok := sd[p.Name]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s %v", p.Name, p.Value.Shape()))
		case !slices.Equal(a.Shape, p.Value.Shape()):
			misshaped = append(misshaped, fmt.Sprintf("%s: has %v, model wants %v", p.Name, a.Shape, p.Value.Shape()))
		case a.Check() != nil:
			misshaped = append(misshaped, fmt.Sprintf("%s: %v", p.Name, a.Check()))
		default:
			off := p.Value.Offset() - ps.Value.Offset()
			copy(host[off:off+p.Value.Len()], a.Data)
		}
	}
	for k, a := range sd {
		if !known[k] {
			unexpected = append(unexpected, fmt.Sprintf("%s %v", k, a.Shape))
		}
	}
	if len(missing)+len(unexpected)+len(misshaped) == 0 {
		return host, nil
	}
	sort.Strings(unexpected) // map order is random; the others follow the model's order
	var b strings.Builder
	fmt.Fprintf(&b, "%s does not match the model", what)
	list := func(title string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(&b, "; %d %s: %s", len(items), title, strings.Join(items, ", "))
		}
	}
	list("missing keys", missing)
	list("unexpected keys", unexpected)
	list("mis-shaped keys", misshaped)
	b.WriteString(" (was it written for another model or configuration?)")
	return nil, fmt.Errorf("%s", b.String())
}

// release frees the flat tensors.
func (ps *ParamSet) release() {
	if ps.Value != nil {
		dev := ps.Value.Device()
		dev.Release(ps.Value)
		dev.Release(ps.Grad)
	}
	ps.Value, ps.Grad, ps.List = nil, nil, nil
}

// initKind says how a parameter starts, like PyTorch's reset_parameters.
type initKind int

const (
	initUniform initKind = iota // U(-bound, bound)
	initOnes
	initZeros
)

type paramSpec struct {
	p     *Param
	shape []int
	kind  initKind
	bound float64
}

// builder collects parameters in state_dict order, then allocates them flat.
type builder struct {
	specs []paramSpec
}

// add registers a parameter; its Value and Grad are set by build.
func (b *builder) add(name string, kind initKind, bound float64, shape ...int) *Param {
	p := &Param{Name: name}
	b.specs = append(b.specs, paramSpec{p: p, shape: shape, kind: kind, bound: bound})
	return p
}

// build allocates the flat tensors, points every Param at its view and initialises the
// values from a PCG generator seeded with seed (same seed, same values, on every backend).
func (b *builder) build(dev compute.Device, seed uint64) *ParamSet {
	n := 0
	for _, s := range b.specs {
		n += compute.Numel(s.shape)
	}
	ps := &ParamSet{Value: dev.Alloc(n), Grad: dev.Alloc(n)}
	host := make([]float32, n)
	rng := rand.New(rand.NewPCG(seed, 0x6c6174656e746164)) // "latentad"
	off := 0
	for _, s := range b.specs {
		k := compute.Numel(s.shape)
		s.p.Value = ps.Value.View(off, s.shape...)
		s.p.Grad = ps.Grad.View(off, s.shape...)
		for i := off; i < off+k; i++ {
			switch s.kind {
			case initUniform:
				host[i] = float32((2*rng.Float64() - 1) * s.bound)
			case initOnes:
				host[i] = 1
			}
		}
		off += k
		ps.List = append(ps.List, *s.p)
	}
	dev.Upload(ps.Value, host)
	return ps
}

// kaimingBound is PyTorch's default bound for Conv/Linear weights and biases:
// kaiming_uniform_(a=√5) gives gain·√(3/fan_in) = 1/√fan_in, and the bias uses the same.
// fan_in is weight dim 1 times the kernel volume (for ConvTranspose3d too, as in PyTorch).
func kaimingBound(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }
