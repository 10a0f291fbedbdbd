package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/latentad/latentad/compute"
)

func testBasics(t *testing.T, dev compute.Device) {
	if dev.Name() == "" {
		t.Error("Name is empty")
	}
	t.Run("AllocZero", func(t *testing.T) {
		// A released buffer may be reused: a new one must still read as zeros.
		a := dev.Alloc(3, 5, 7)
		dev.Fill(a, 2.5)
		dev.Release(a)
		for _, shape := range [][]int{{3, 5, 7}, {1}, {2, 3}, {64, 3}} {
			x := dev.Alloc(shape...)
			if x.Rank() != len(shape) || x.Len() != compute.Numel(shape) || x.Offset() != 0 {
				t.Errorf("Alloc(%v) gave %v, offset %d", shape, x, x.Offset())
			}
			for i, v := range compute.ToHost(x) {
				if v != 0 {
					t.Errorf("Alloc(%v)[%d] = %v, want 0", shape, i, v)
					break
				}
			}
			dev.Release(x)
		}
	})
	t.Run("UploadDownloadViews", func(t *testing.T) {
		e := newEnv(t, dev)
		data := e.normal(2*3*4, 1, 0)
		x := e.inout("x", data, 2, 3, 4)
		e.exact("download of a view", e.get(x), data)
		// Upload into a view of a view, then read the parent.
		part := e.normal(5, 1, 0)
		dev.Upload(x.View(7, 5), part)
		want := append([]float32(nil), data...)
		copy(want[7:], part)
		e.exact("upload into a view", e.get(x), want)
		// Sample and Reshape views address the same elements.
		e.exact("Sample(1,2)", e.get(x.Sample(1, 2)), want[12:])
		e.exact("Reshape", e.get(x.Reshape(4, 6)), want)
		e.verify()
	})
	t.Run("Ordering", func(t *testing.T) {
		// Dependent ops queued without Sync must see each other's results.
		e := newEnv(t, dev)
		n := 1000
		a, b, c := e.out("a", n), e.out("b", n), e.out("c", n)
		dev.Fill(a, 1.5)
		dev.Fill(b, -2)
		dev.AXPY(2, a, b) // b = -2 + 3 = 1
		dev.AXPBY(3, a, -1, b, c)
		dev.ActForward(compute.ReLU, c, c) // 4.5 - 1 = 3.5
		dev.Copy(a, c)
		dev.AXPY(1, c, a) // 7
		if err := dev.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		got := e.get(a)
		for i, v := range got {
			if v != 7 {
				t.Fatalf("element %d after the chain = %v, want 7", i, v)
			}
		}
		e.verify()
	})
}

// elementwise lengths: 1, odd small, and one past the ~64K point where a CPU backend
// starts splitting work across cores.
func lengths(o Options) []int {
	if o.Small {
		return []int{1, 1001}
	}
	return []int{1, 7, 1001, 150001}
}

func testElementwise(t *testing.T, dev compute.Device, o Options) {
	for _, n := range lengths(o) {
		t.Run(fmt.Sprintf("Fill/%d", n), func(t *testing.T) {
			e := newEnv(t, dev)
			x := e.out("x", n)
			dev.Fill(x, -0.375)
			want := make([]float32, n)
			for i := range want {
				want[i] = -0.375
			}
			e.exact("Fill", e.get(x), want)
			e.verify()
		})
		t.Run(fmt.Sprintf("Copy/%d", n), func(t *testing.T) {
			e := newEnv(t, dev)
			src := e.normal(n, 1, 0)
			// Shapes may differ when lengths agree.
			x := e.in("src", src, n)
			y := e.out("dst", 1, n, 1)
			dev.Copy(y, x)
			e.exact("Copy", e.get(y), src)
			e.verify()
		})
		t.Run(fmt.Sprintf("AXPY/%d", n), func(t *testing.T) {
			e := newEnv(t, dev)
			xs, ys := e.normal(n, 1, 0), e.normal(n, 1, 0)
			const a = -0.7
			x, y := e.in("x", xs, n), e.inout("y", ys, n)
			dev.AXPY(a, x, y)
			want, mag := make([]float64, n), make([]float64, n)
			for i := range want {
				p := float64(float32(a)) * float64(xs[i])
				want[i] = float64(ys[i]) + p
				mag[i] = math.Abs(float64(ys[i])) + math.Abs(p)
			}
			// y + a·x: at most two roundings (one when fused), each ≤ u of the magnitude.
			e.check("AXPY", e.get(y), want, mag, 2.5*u)
			e.verify()
		})
		for _, alias := range []string{"none", "out=x", "out=y"} {
			t.Run(fmt.Sprintf("AXPBY/%d/%s", n, alias), func(t *testing.T) {
				e := newEnv(t, dev)
				xs, ys := e.normal(n, 1, 0), e.normal(n, 1, 0)
				const a, b = 1.25, -0.3
				want, mag := make([]float64, n), make([]float64, n)
				for i := range want {
					p, q := float64(float32(a))*float64(xs[i]), float64(float32(b))*float64(ys[i])
					want[i] = p + q
					mag[i] = math.Abs(p) + math.Abs(q)
				}
				var x, y, out *compute.Tensor
				switch alias {
				case "none":
					x, y, out = e.in("x", xs, n), e.in("y", ys, n), e.out("out", n)
				case "out=x":
					x, y = e.inout("x", xs, n), e.in("y", ys, n)
					out = x
				case "out=y":
					x, y = e.in("x", xs, n), e.inout("y", ys, n)
					out = y
				}
				dev.AXPBY(a, x, b, y, out)
				// a·x + b·y: three roundings at most.
				e.check("AXPBY", e.get(out), want, mag, 3.5*u)
				e.verify()
			})
		}
		for _, alias := range []string{"none", "out=x", "out=y"} {
			if n < 3 {
				continue
			}
			t.Run(fmt.Sprintf("AXPBYSample/%d/%s", n, alias), func(t *testing.T) {
				e := newEnv(t, dev)
				N := 3
				per := n / N
				shape := []int{N, per}
				xs, ys := e.normal(N*per, 1, 0), e.normal(N*per, 1, 0)
				as, bs := e.normal(N, 1, 0), e.normal(N, 1, 0)
				want, mag := make([]float64, N*per), make([]float64, N*per)
				for i := range want {
					s := i / per
					p, q := float64(as[s])*float64(xs[i]), float64(bs[s])*float64(ys[i])
					want[i] = p + q
					mag[i] = math.Abs(p) + math.Abs(q)
				}
				a, b := e.in("a", as, N), e.in("b", bs, N)
				var x, y, out *compute.Tensor
				switch alias {
				case "none":
					x, y, out = e.in("x", xs, shape...), e.in("y", ys, shape...), e.out("out", shape...)
				case "out=x":
					x, y = e.inout("x", xs, shape...), e.in("y", ys, shape...)
					out = x
				case "out=y":
					x, y = e.in("x", xs, shape...), e.inout("y", ys, shape...)
					out = y
				}
				dev.AXPBYSample(a, x, b, y, out)
				e.check("AXPBYSample", e.get(out), want, mag, 3.5*u)
				e.verify()
			})
		}
		for _, alias := range []string{"none", "out=a", "out=b"} {
			t.Run(fmt.Sprintf("SqDiff/%d/%s", n, alias), func(t *testing.T) {
				e := newEnv(t, dev)
				as, bs := e.normal(n, 1, 0), e.normal(n, 1, 0)
				want := make([]float64, n)
				for i := range want {
					d := float64(as[i]) - float64(bs[i])
					want[i] = d * d
				}
				var a, b, out *compute.Tensor
				switch alias {
				case "none":
					a, b, out = e.in("a", as, n), e.in("b", bs, n), e.out("out", n)
				case "out=a":
					a, b = e.inout("a", as, n), e.in("b", bs, n)
					out = a
				case "out=b":
					a, b = e.in("a", as, n), e.inout("b", bs, n)
					out = b
				}
				dev.SqDiff(a, b, out)
				// (a-b)²: the difference rounds once (relative u, doubled by squaring), the
				// square once more.
				e.check("SqDiff", e.get(out), want, nil, 3.5*u)
				e.verify()
			})
		}
	}
}

func testActivations(t *testing.T, dev compute.Device, o Options) {
	acts := []compute.Act{compute.ReLU, compute.SiLU, compute.Tanh}
	for _, n := range lengths(o) {
		for _, act := range acts {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("%v/forward/%d", act, n)
				if inPlace {
					name += "/in-place"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, dev)
					xs := e.uniform(n, -6, 6)
					if n > 4 {
						xs[0], xs[1], xs[2], xs[3] = 0, -20, 20, 1e-4 // zero, saturation, tiny
					}
					want, mag := make([]float64, n), make([]float64, n)
					for i, v := range xs {
						want[i] = actRef(act, float64(v))
						mag[i] = math.Abs(want[i])
					}
					tol := 0.0 // ReLU is exact
					if act != compute.ReLU {
						// exp and tanh in float32 (GPU fast math included) are accurate to a
						// few ulps of |x|-dependent size; relative to the result plus an
						// absolute floor, since tanh(x) = 1-2/(e^{2x}+1) loses relative
						// accuracy near 0 while staying within u of 1.
						tol = 16 * u
						for i := range mag {
							mag[i] += 1
						}
					}
					var x, y *compute.Tensor
					if inPlace {
						x = e.inout("x", xs, n)
						y = x
					} else {
						x, y = e.in("x", xs, n), e.out("y", n)
					}
					dev.ActForward(act, x, y)
					e.check(act.String(), e.get(y), want, mag, tol)
					e.verify()
				})
			}
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("%v/backward/%d", act, n)
				if inPlace {
					name += "/dx=dy"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, dev)
					xs := e.uniform(n, -6, 6)
					if n > 4 {
						xs[0], xs[1], xs[2], xs[3] = -20, 20, 1e-4, 0
					}
					ys := make([]float32, n)
					for i, v := range xs {
						ys[i] = float32(actRef(act, float64(v)))
					}
					dys := e.normal(n, 1, 0)
					want, mag := make([]float64, n), make([]float64, n)
					for i := range want {
						x, y, dy := float64(xs[i]), float64(ys[i]), float64(dys[i])
						switch act {
						case compute.ReLU:
							if x > 0 {
								want[i] = dy
							}
						case compute.SiLU:
							s := 1 / (1 + math.Exp(-x))
							want[i] = dy * s * (1 + x*(1-s))
							// σ and the bracket each carry a few ulps of exp error.
							mag[i] = math.Abs(dy) * (s + math.Abs(x)*s*(1-s) + 1)
						case compute.Tanh:
							// From the forward output y, as the contract says.
							want[i] = dy * (1 - y*y)
							// 1-y² cancels near |y| = 1: its error is u·(1 + y²), not u·|1-y²|.
							mag[i] = math.Abs(dy) * (1 + y*y)
						}
					}
					tol := 0.0
					if act != compute.ReLU {
						tol = 16 * u
					}
					x, y := e.in("x", xs, n), e.in("y", ys, n)
					var dy, dx *compute.Tensor
					if inPlace {
						dy = e.inout("dy", dys, n)
						dx = dy
					} else {
						dy, dx = e.in("dy", dys, n), e.out("dx", n)
					}
					dev.ActBackward(act, x, y, dy, dx)
					e.check(act.String()+" backward", e.get(dx), want, mag, tol)
					e.verify()
				})
			}
		}
	}
}

func actRef(act compute.Act, x float64) float64 {
	switch act {
	case compute.ReLU:
		return max(x, 0)
	case compute.SiLU:
		return x / (1 + math.Exp(-x))
	case compute.Tanh:
		return math.Tanh(x)
	}
	panic(fmt.Sprintf("devicetest: unknown activation %v", act))
}
