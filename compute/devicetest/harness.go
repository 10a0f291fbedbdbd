package devicetest

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/latentad/latentad/compute"
)

// u is the float32 unit roundoff: one rounding to float32 changes a value by at most u·|v|.
const u = 1.0 / (1 << 24)

// sentinel is the initial content of outputs and part of the margins around every view: a
// quiet NaN with a payload, compared bit for bit.
var sentinel = math.Float32frombits(0x7fc0beef)

// operand is one view under test inside its own parent allocation.
type operand struct {
	name   string
	parent *compute.Tensor
	view   *compute.Tensor
	before int
	init   []float32 // the parent's content when uploaded
	output bool      // the op may change the view's content
}

// env runs one case: it makes operands, remembers them, and checks them after the op.
type env struct {
	t   *testing.T
	dev compute.Device
	rng *rand.Rand
	ops []*operand
}

func newEnv(t *testing.T, dev compute.Device) *env {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(t.Name())) // each case its own stream, independent of which others run
	return &env{t: t, dev: dev, rng: rand.New(rand.NewPCG(h.Sum64(), 42))}
}

// margins before each successive operand; odd and varied so that offsets are never 0 and
// rarely aligned.
var margins = []int{3, 1, 6, 5, 2, 7, 4, 9}

func (e *env) operand(name string, data []float32, output bool, shape ...int) *compute.Tensor {
	n := compute.Numel(shape)
	if data != nil && len(data) != n {
		panic(fmt.Sprintf("devicetest: %s: %d values for shape %v", name, len(data), shape))
	}
	before, after := margins[len(e.ops)%len(margins)], 2
	init := make([]float32, before+n+after)
	for i := range init {
		init[i] = sentinel
	}
	// Margins alternate a huge finite value (nearest the view) with NaN: NaN survives
	// multiplication by zero, while a finite value changes when arithmetic lands on it
	// (NaN plus NaN may keep the payload bit for bit).
	for i := before - 1; i >= 0; i -= 2 {
		init[i] = float32(-1.5e30 * float64(i+1))
	}
	for i := before + n; i < len(init); i += 2 {
		init[i] = float32(1.25e30 * float64(i+1))
	}
	if data != nil {
		copy(init[before:], data)
	}
	parent := e.dev.Alloc(len(init))
	e.dev.Upload(parent, init)
	view := parent.View(before, shape...)
	e.ops = append(e.ops, &operand{name: name, parent: parent, view: view, before: before, init: init, output: output})
	return view
}

// in makes an input view holding data; it must be unchanged by the op.
func (e *env) in(name string, data []float32, shape ...int) *compute.Tensor {
	return e.operand(name, data, false, shape...)
}

// out makes an output view filled with the NaN sentinel.
func (e *env) out(name string, shape ...int) *compute.Tensor {
	return e.operand(name, nil, true, shape...)
}

// inout makes a view holding data that the op reads and overwrites.
func (e *env) inout(name string, data []float32, shape ...int) *compute.Tensor {
	return e.operand(name, data, true, shape...)
}

// get downloads a view.
func (e *env) get(t *compute.Tensor) []float32 {
	out := make([]float32, t.Len())
	e.dev.Download(t, out)
	return out
}

// verify checks that no op wrote outside its operands' views and that inputs are intact,
// then releases the buffers.
func (e *env) verify() {
	e.t.Helper()
	for _, op := range e.ops {
		got := e.get(op.parent)
		n := op.view.Len()
		for i, v := range got {
			inside := i >= op.before && i < op.before+n
			if inside && op.output {
				continue
			}
			if math.Float32bits(v) != math.Float32bits(op.init[i]) {
				where := "margin of"
				if inside {
					where = "input"
				}
				e.t.Errorf("%s %s changed at element %d (view offset %d, %d elements): was %v, now %v",
					where, op.name, i-op.before, op.before, n, op.init[i], v)
				break
			}
		}
		e.dev.Release(op.parent)
	}
	e.ops = nil
}

// normal returns n standard normal float32 values times scale plus shift.
func (e *env) normal(n int, scale, shift float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(e.rng.NormFloat64()*scale + shift)
	}
	return out
}

// uniform returns n values uniform in [lo, hi).
func (e *env) uniform(n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*e.rng.Float64())
	}
	return out
}

// check compares got with the reference: element i passes when |got-want| ≤ tol·mag[i].
// mag is the scale of the rounding errors a correct float32 evaluation may make (nil means
// |want|); NaN or ±Inf where the reference is finite always fails.
func (e *env) check(what string, got []float32, want, mag []float64, tol float64) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	type bad struct {
		i     int
		ratio float64
	}
	var fails []bad
	worst := 0.0
	for i, g := range got {
		m := math.Abs(want[i])
		if mag != nil {
			m = mag[i]
		}
		err := math.Abs(float64(g) - want[i])
		limit := tol*m + 1e-36 // the floor only admits float32 denormal noise
		ratio := err / limit
		if math.IsNaN(err) || math.IsInf(err, 0) {
			ratio = math.Inf(1)
		}
		worst = max(worst, ratio)
		if ratio > 1 {
			fails = append(fails, bad{i, ratio})
		}
	}
	if len(fails) == 0 {
		return
	}
	sort.Slice(fails, func(a, b int) bool { return fails[a].ratio > fails[b].ratio })
	msg := fmt.Sprintf("%s: %d of %d values outside tolerance %.3g·magnitude (worst %.3g× the limit)",
		what, len(fails), len(got), tol, worst)
	for _, f := range fails[:min(len(fails), 5)] {
		m := math.Abs(want[f.i])
		if mag != nil {
			m = mag[f.i]
		}
		msg += fmt.Sprintf("\n\t[%d] got %.9g want %.9g (magnitude %.3g)", f.i, got[f.i], want[f.i], m)
	}
	e.t.Error(msg)
}

// exact compares bit for bit (after treating all NaNs as equal).
func (e *env) exact(what string, got, want []float32) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if math.Float32bits(g) == math.Float32bits(w) || (g != g && w != w) || g == w {
			continue
		}
		e.t.Errorf("%s: element %d is %v, want exactly %v", what, i, g, w)
		return
	}
}

// sumTol is the tolerance, per unit of Σ|terms|, for a sum of L float32 terms. Recursive
// float32 summation has a worst case of L·u, but rounding errors of random sign grow like
// √L (and pairwise or blocked sums do better still); 4·u·√L leaves a wide margin while a
// single missing or doubled term (≈ Σ|terms|/L) still fails for every L below ~26,000.
func sumTol(L int) float64 { return u * (4 + 4*math.Sqrt(float64(L))) }

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func shapeName(shape ...int) string {
	s := ""
	for i, d := range shape {
		if i > 0 {
			s += "x"
		}
		s += fmt.Sprint(d)
	}
	return s
}
