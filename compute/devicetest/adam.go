package devicetest

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/latentad/latentad/compute"
)

// pyComplement is 1-β as PyTorch forms it: Python computes 1-beta in double precision from
// the decimal the user wrote, and the float32 kernel rounds that once. β arrives here as a
// float32, so the decimal is recovered as the shortest one that rounds to it. For β2 =
// 0.999 this matters: 1-float32(0.999) is 1.3e-5 (≈ 200 ulps) away from 0.001.
func pyComplement(b float32) float64 {
	f, err := strconv.ParseFloat(strconv.FormatFloat(float64(b), 'g', -1, 32), 64)
	if err != nil {
		f = float64(b)
	}
	return float64(float32(1 - f))
}

// testAdam runs three steps of Adam with PyTorch's bias corrections, with and without
// weight decay, against a float64 evaluation of the formula in compute.AdamArgs.
func testAdam(t *testing.T, dev compute.Device, o Options) {
	sizes := []int{1, 1001, 150001}
	if o.Small {
		sizes = []int{1001}
	}
	for _, n := range sizes {
		for _, wd := range []float32{0, 0.01} {
			t.Run(fmt.Sprintf("%d/wd=%g", n, wd), func(t *testing.T) {
				e := newEnv(t, dev)
				const lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
				ps := e.normal(n, 1, 0)
				ms, vs := make([]float32, n), make([]float32, n)
				p, m, v := e.inout("p", ps, n), e.inout("m", ms, n), e.inout("v", vs, n)
				for step := 1; step <= 3; step++ {
					// Gradients of mixed scale, as in real models.
					gs := e.normal(n, 1e-2, 0)
					for i := range gs {
						if i%7 == 3 {
							gs[i] *= 1e-4
						}
					}
					args := compute.AdamArgs{
						Beta1: b1, Beta2: b2, Eps: eps, WeightDecay: wd,
						StepSize: float32(lr / (1 - math.Pow(b1, float64(step)))),
						BC2Sqrt:  float32(math.Sqrt(1 - math.Pow(b2, float64(step)))),
					}
					c1, c2 := pyComplement(args.Beta1), pyComplement(args.Beta2)
					wantP, wantM, wantV := make([]float64, n), make([]float64, n), make([]float64, n)
					magP, magM, magV := make([]float64, n), make([]float64, n), make([]float64, n)
					for i := range n {
						pi, gi := float64(ps[i]), float64(gs[i])
						g := gi + float64(args.WeightDecay)*pi
						bm, cm := float64(args.Beta1)*float64(ms[i]), c1*g
						bv, cv := float64(args.Beta2)*float64(vs[i]), c2*g*g
						mi, vi := bm+cm, bv+cv
						den := math.Sqrt(vi)/float64(args.BC2Sqrt) + float64(args.Eps)
						upd := float64(args.StepSize) * mi / den
						wantM[i], wantV[i], wantP[i] = mi, vi, pi-upd
						// g carries one rounding (wd), m and v two or three each; the update
						// compounds m's error, half of v's (square root) and four more
						// roundings (sqrt, /bc2, +eps, ÷, ×step): relative 16u of the terms.
						magM[i] = math.Abs(bm) + math.Abs(cm) + math.Abs(c1*float64(args.WeightDecay)*pi)
						magV[i] = math.Abs(bv) + math.Abs(cv)
						magP[i] = math.Abs(pi) + float64(args.StepSize)*magM[i]/den
					}
					g := e.in(fmt.Sprintf("g%d", step), gs, n)
					dev.Adam(p, g, m, v, args)
					gotP, gotM, gotV := e.get(p), e.get(m), e.get(v)
					e.check(fmt.Sprintf("step %d m", step), gotM, wantM, magM, 4*u)
					e.check(fmt.Sprintf("step %d v", step), gotV, wantV, magV, 4*u)
					e.check(fmt.Sprintf("step %d p", step), gotP, wantP, magP, 16*u)
					// Continue from the device's state so errors do not compound.
					ps, ms, vs = gotP, gotM, gotV
				}
				e.verify()
			})
		}
	}
}
