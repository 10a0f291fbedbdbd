// Package optime wraps a compute.Device to measure where time goes: the wall time of every
// op, summed by op name and shapes. It is what `latentad bench --ops` prints.
//
// On an asynchronous device (Metal) every op is followed by Sync, so the figures are per op
// but the whole run is slower than without the wrapper.
package optime

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/latentad/latentad/compute"
)

// Device is a compute.Device that times the ops it forwards to the wrapped device.
type Device struct {
	compute.Device
	sync  bool
	stats map[string]*Stat
}

// Stat is one op at one set of shapes.
type Stat struct {
	Op    string        `json:"op"`
	Calls int           `json:"calls"`
	Total time.Duration `json:"total_ns"`
}

// Wrap returns dev with every op timed. sync makes each op wait for the device (needed
// on devices that only enqueue work).
func Wrap(dev compute.Device, sync bool) *Device {
	return &Device{Device: dev, sync: sync, stats: map[string]*Stat{}}
}

// Reset forgets what was measured.
func (d *Device) Reset() { d.stats = map[string]*Stat{} }

// Stats returns the measurements, longest total first.
func (d *Device) Stats() []Stat {
	out := make([]Stat, 0, len(d.stats))
	for _, s := range d.stats {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Op < out[j].Op
	})
	return out
}

func shapes(ts ...*compute.Tensor) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(' ')
		}
		if t == nil {
			b.WriteString("-")
			continue
		}
		s := t.Shape()
		for j, v := range s {
			if j > 0 {
				b.WriteByte('x')
			}
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

// time runs f and adds its duration to op's entry.
func (d *Device) time(op string, f func()) {
	t0 := time.Now()
	f()
	if d.sync {
		_ = d.Device.Sync()
	}
	dt := time.Since(t0)
	s := d.stats[op]
	if s == nil {
		s = &Stat{Op: op}
		d.stats[op] = s
	}
	s.Calls++
	s.Total += dt
}

// The ops below forward to the wrapped device, timed under their name and shapes.

func (d *Device) Fill(x *compute.Tensor, v float32) {
	d.time("Fill "+shapes(x), func() { d.Device.Fill(x, v) })
}
func (d *Device) Copy(dst, src *compute.Tensor) {
	d.time("Copy "+shapes(src), func() { d.Device.Copy(dst, src) })
}
func (d *Device) AXPY(a float32, x, y *compute.Tensor) {
	d.time("AXPY "+shapes(x), func() { d.Device.AXPY(a, x, y) })
}
func (d *Device) AXPBY(a float32, x *compute.Tensor, b float32, y, out *compute.Tensor) {
	d.time("AXPBY "+shapes(x), func() { d.Device.AXPBY(a, x, b, y, out) })
}
func (d *Device) AXPBYSample(a, x, b, y, out *compute.Tensor) {
	d.time("AXPBYSample "+shapes(x), func() { d.Device.AXPBYSample(a, x, b, y, out) })
}
func (d *Device) SqDiff(a, b, out *compute.Tensor) {
	d.time("SqDiff "+shapes(a), func() { d.Device.SqDiff(a, b, out) })
}
func (d *Device) ActForward(act compute.Act, x, y *compute.Tensor) {
	d.time(fmt.Sprintf("ActForward(%v) %s", act, shapes(x)), func() { d.Device.ActForward(act, x, y) })
}
func (d *Device) ActBackward(act compute.Act, x, y, dy, dx *compute.Tensor) {
	d.time(fmt.Sprintf("ActBackward(%v) %s", act, shapes(dy)), func() { d.Device.ActBackward(act, x, y, dy, dx) })
}
func (d *Device) AddBias(x, b *compute.Tensor) {
	d.time("AddBias "+shapes(x), func() { d.Device.AddBias(x, b) })
}
func (d *Device) AddSampleBias(x, b *compute.Tensor) {
	d.time("AddSampleBias "+shapes(x), func() { d.Device.AddSampleBias(x, b) })
}
func (d *Device) SumChannels(x, out *compute.Tensor) {
	d.time("SumChannels "+shapes(x), func() { d.Device.SumChannels(x, out) })
}
func (d *Device) SumSpatial(x, out *compute.Tensor) {
	d.time("SumSpatial "+shapes(x), func() { d.Device.SumSpatial(x, out) })
}
func (d *Device) MeanSample(x, out *compute.Tensor) {
	d.time("MeanSample "+shapes(x), func() { d.Device.MeanSample(x, out) })
}
func (d *Device) MeanChannels(x, out *compute.Tensor) {
	d.time("MeanChannels "+shapes(x), func() { d.Device.MeanChannels(x, out) })
}
func (d *Device) Welford(x, mean, m2 *compute.Tensor, k int) {
	d.time("Welford "+shapes(x), func() { d.Device.Welford(x, mean, m2, k) })
}
func (d *Device) Gemm(transA, transB bool, alpha float32, a, b *compute.Tensor, beta float32, c *compute.Tensor) {
	d.time("Gemm "+shapes(a, b), func() { d.Device.Gemm(transA, transB, alpha, a, b, beta, c) })
}
func (d *Device) Conv3d(x, w, bias, y *compute.Tensor, p compute.Conv) {
	d.time("Conv3d "+shapes(x, w), func() { d.Device.Conv3d(x, w, bias, y, p) })
}
func (d *Device) Conv3dBackwardData(dy, w, dx *compute.Tensor, p compute.Conv) {
	d.time("Conv3dBackwardData "+shapes(dy, w), func() { d.Device.Conv3dBackwardData(dy, w, dx, p) })
}
func (d *Device) Conv3dBackwardWeight(x, dy, dw, db *compute.Tensor, p compute.Conv) {
	d.time("Conv3dBackwardWeight "+shapes(x, dw), func() { d.Device.Conv3dBackwardWeight(x, dy, dw, db, p) })
}
func (d *Device) GroupNormForward(x, gamma, beta, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	d.time("GroupNormForward "+shapes(x), func() { d.Device.GroupNormForward(x, gamma, beta, y, mean, rstd, groups, eps) })
}
func (d *Device) GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	// bias and pre may be nil; their shapes ("-" when nil) tell the call sites apart.
	d.time("GroupNormSiLU "+shapes(x, bias, pre), func() {
		d.Device.GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd, groups, eps)
	})
}
func (d *Device) GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta *compute.Tensor, groups int) {
	d.time("GroupNormBackward "+shapes(x), func() { d.Device.GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta, groups) })
}
func (d *Device) Adam(p, g, m, v *compute.Tensor, a compute.AdamArgs) {
	d.time("Adam "+shapes(p), func() { d.Device.Adam(p, g, m, v, a) })
}
