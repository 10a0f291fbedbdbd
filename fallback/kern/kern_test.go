package kern

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// Tolerances. Each output is a float32 sum of K products accumulated in blocks: at most
// kcBlock terms in a register chain, then one addition per block into C (and one per
// worker part for the weight gradient). The classic bound for recursive summation gives
// |error| ≤ (chain length + 2)·u·Σ|terms| with u = 2⁻²⁴; we allow exactly that. It is far
// looser than typical errors yet far tighter than any indexing mistake (a missing or
// doubled term of a K-term sum is off by about Σ|terms|/K ≥ Σ|terms|/10⁴, while the bound
// is ≤ 300·6e-8 = 1.8e-5 of Σ|terms| for the sizes tested).
func tolFactor(k int) float64 {
	const u = 1.0 / (1 << 24)
	return float64(kcBlock+(k+kcBlock-1)/kcBlock+2+runtime.GOMAXPROCS(0)) * u
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// compare checks got against ref element-wise with bound tol·mag[i].
func compare(t *testing.T, what string, got []float32, ref, mag []float64, tol float64) {
	t.Helper()
	if len(got) != len(ref) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(ref))
	}
	bad := 0
	nonzero := false
	for i := range ref {
		if mag[i] > 0 {
			nonzero = true
		}
		d := math.Abs(float64(got[i]) - ref[i])
		if !(d <= tol*mag[i]+1e-30) {
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g (|diff| %g > bound %g)", what, i, got[i], ref[i], d, tol*mag[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements out of tolerance", what, bad, len(ref))
	}
	if !nonzero {
		t.Fatalf("%s: reference is identically zero; the test would prove nothing", what)
	}
}

// Float64 references, written straight from PyTorch's definitions (conv3d is a
// cross-correlation: y[n,o,p] = b[o] + Σ_c,k x[n,c,p·stride-pad+k]·w[o,c,k]).

func refForward(x, w, bias []float32, s ConvShape) (y, mag []float64) {
	y = make([]float64, s.N*s.Co*s.outSize())
	mag = make([]float64, len(y))
	s.visit(func(n, o, c int, op, ip, kp int) {
		xi := float64(x[(n*s.Ci+c)*s.inSize()+ip])
		wi := float64(w[(o*s.Ci+c)*s.taps()+kp])
		yi := (n*s.Co+o)*s.outSize() + op
		y[yi] += xi * wi
		mag[yi] += math.Abs(xi * wi)
	})
	if bias != nil {
		for i := range y {
			o := i / s.outSize() % s.Co
			y[i] += float64(bias[o])
			mag[i] += math.Abs(float64(bias[o]))
		}
	}
	return y, mag
}

func refBackwardData(dy, w []float32, s ConvShape) (dx, mag []float64) {
	dx = make([]float64, s.N*s.Ci*s.inSize())
	mag = make([]float64, len(dx))
	s.visit(func(n, o, c int, op, ip, kp int) {
		g := float64(dy[(n*s.Co+o)*s.outSize()+op])
		wi := float64(w[(o*s.Ci+c)*s.taps()+kp])
		xi := (n*s.Ci+c)*s.inSize() + ip
		dx[xi] += g * wi
		mag[xi] += math.Abs(g * wi)
	})
	return dx, mag
}

func refBackwardWeight(x, dy []float32, s ConvShape) (dw, dwMag, db, dbMag []float64) {
	dw = make([]float64, s.Co*s.Ci*s.taps())
	dwMag = make([]float64, len(dw))
	s.visit(func(n, o, c int, op, ip, kp int) {
		g := float64(dy[(n*s.Co+o)*s.outSize()+op])
		xi := float64(x[(n*s.Ci+c)*s.inSize()+ip])
		wi := (o*s.Ci+c)*s.taps() + kp
		dw[wi] += g * xi
		dwMag[wi] += math.Abs(g * xi)
	})
	db = make([]float64, s.Co)
	dbMag = make([]float64, s.Co)
	for n := range s.N {
		for o := range s.Co {
			for p := range s.outSize() {
				g := float64(dy[(n*s.Co+o)*s.outSize()+p])
				db[o] += g
				dbMag[o] += math.Abs(g)
			}
		}
	}
	return dw, dwMag, db, dbMag
}

// visit calls f for every (sample, out channel, in channel, output position, input
// position, tap) with the input position inside the unpadded volume.
func (s ConvShape) visit(f func(n, o, c, op, ip, kp int)) {
	for n := range s.N {
		for o := range s.Co {
			for c := range s.Ci {
				for od := range s.Out[0] {
					for oh := range s.Out[1] {
						for ow := range s.Out[2] {
							op := (od*s.Out[1]+oh)*s.Out[2] + ow
							for kd := range s.K[0] {
								id := od*s.Stride[0] - s.Pad[0] + kd
								if id < 0 || id >= s.In[0] {
									continue
								}
								for kh := range s.K[1] {
									ih := oh*s.Stride[1] - s.Pad[1] + kh
									if ih < 0 || ih >= s.In[1] {
										continue
									}
									for kw := range s.K[2] {
										iw := ow*s.Stride[2] - s.Pad[2] + kw
										if iw < 0 || iw >= s.In[2] {
											continue
										}
										f(n, o, c, op, (id*s.In[1]+ih)*s.In[2]+iw,
											(kd*s.K[1]+kh)*s.K[2]+kw)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func shape(n, ci, co int, in, k, stride, pad [3]int) ConvShape {
	s := ConvShape{N: n, Ci: ci, Co: co, In: in, K: k, Stride: stride, Pad: pad}
	for a := range 3 {
		s.Out[a] = (in[a]+2*pad[a]-k[a])/stride[a] + 1
	}
	return s
}

func v3(a, b, c int) [3]int { return [3]int{a, b, c} }
func c3(a int) [3]int       { return [3]int{a, a, a} }

// convCases covers kernel 1/3/4, stride 1/2, padding 0/1, odd extents, W below, at and
// above one 16-column panel, channel counts 1/3/5/16, reductions longer than kcBlock
// (16·27 = 432) and more than mcBlock rows in the weight gradient.
var convCases = []struct {
	name string
	s    ConvShape
}{
	{"1to1_k3s1p1_odd", shape(1, 1, 1, v3(5, 6, 7), c3(3), c3(1), c3(1))},
	{"3to5_k3s1p1_odd", shape(2, 3, 5, v3(7, 5, 9), c3(3), c3(1), c3(1))},
	{"5to3_k4s2p1_odd", shape(2, 5, 3, v3(9, 8, 7), c3(4), c3(2), c3(1))},
	{"16to16_k1s1p0", shape(1, 16, 16, v3(4, 6, 5), c3(1), c3(1), c3(0))},
	{"3to16_k3s2p0", shape(3, 3, 16, v3(6, 7, 8), c3(3), c3(2), c3(0))},
	{"16to5_k4s2p1_w33", shape(1, 16, 5, v3(5, 5, 33), c3(4), c3(2), c3(1))},
	{"16to16_k3s1p1_w16", shape(2, 16, 16, v3(4, 8, 16), c3(3), c3(1), c3(1))},
	{"3to5_mixed_axes", shape(2, 3, 5, v3(5, 9, 10), v3(1, 3, 4), v3(1, 2, 2), v3(0, 1, 1))},
	{"5to3_k1s2p0", shape(2, 5, 3, v3(5, 6, 7), c3(1), c3(2), c3(0))},
	{"1to16_k4s2p1_w32", shape(1, 1, 16, v3(6, 8, 32), c3(4), c3(2), c3(1))},
	{"16to16_k3s1p1_big", shape(1, 16, 16, v3(8, 16, 16), c3(3), c3(1), c3(1))},
	// Ci·K³ = 192 = kcBlock: with the bias the last K block holds only the ones row.
	{"3to5_k4s1p1_w16", shape(2, 3, 5, v3(5, 4, 17), c3(4), c3(1), c3(1))},
}

// forProcs runs f with every kernel set this build and CPU support (plain Go always),
// on one goroutine and on three (more workers than chunks in the small cases).
func forProcs(t *testing.T, f func(t *testing.T)) {
	for _, set := range availableKernels() {
		for _, procs := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/procs%d", set.name, procs), func(t *testing.T) {
				oldKS, oldProcs := ks, runtime.GOMAXPROCS(procs)
				ks = set
				defer func() { ks = oldKS; runtime.GOMAXPROCS(oldProcs) }()
				f(t)
			})
		}
	}
}

// directOnly makes the direct GEMM path run for the test, also on shapes the Winograd
// path serves (TestWinograd checks that one, with its own error bound).
func directOnly(t *testing.T) {
	old := useWinograd
	useWinograd = false
	t.Cleanup(func() { useWinograd = old })
}

func TestConv3dForward(t *testing.T) {
	directOnly(t)
	for ci, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			r := rand.New(rand.NewPCG(1, uint64(ci)))
			x := randSlice(r, s.N*s.Ci*s.inSize())
			w := randSlice(r, s.Co*s.Ci*s.taps())
			b := randSlice(r, s.Co)
			for _, withBias := range []bool{true, false} {
				bias := b
				if !withBias {
					bias = nil
				}
				ref, mag := refForward(x, w, bias, s)
				forProcs(t, func(t *testing.T) {
					y := randSlice(r, len(ref)) // garbage: must be overwritten
					Conv3dForward(x, w, bias, y, s)
					compare(t, fmt.Sprintf("y(bias=%v)", withBias), y, ref, mag, tolFactor(s.Ci*s.taps()))
				})
			}
		})
	}
}

func TestConv3dBackwardData(t *testing.T) {
	directOnly(t)
	for ci, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			r := rand.New(rand.NewPCG(2, uint64(ci)))
			dy := randSlice(r, s.N*s.Co*s.outSize())
			w := randSlice(r, s.Co*s.Ci*s.taps())
			ref, mag := refBackwardData(dy, w, s)
			forProcs(t, func(t *testing.T) {
				dx := randSlice(r, len(ref))
				Conv3dBackwardData(dy, w, dx, s)
				// Reduction length: every (out channel, tap) pair can feed one input.
				compare(t, "dx", dx, ref, addFloor(mag), tolFactor(s.Co*s.taps()))
			})
		})
	}
}

// addFloor gives positions no term reaches (possible with stride > kernel) a tiny
// magnitude so that compare demands them to be exactly… near zero rather than skipping.
func addFloor(mag []float64) []float64 {
	out := make([]float64, len(mag))
	for i, m := range mag {
		out[i] = max(m, 1e-20)
	}
	return out
}

func TestConv3dBackwardWeight(t *testing.T) {
	directOnly(t)
	for ci, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			r := rand.New(rand.NewPCG(3, uint64(ci)))
			x := randSlice(r, s.N*s.Ci*s.inSize())
			dy := randSlice(r, s.N*s.Co*s.outSize())
			dwRef, dwMag, dbRef, dbMag := refBackwardWeight(x, dy, s)
			forProcs(t, func(t *testing.T) {
				dw := randSlice(r, len(dwRef))
				db := randSlice(r, len(dbRef))
				Conv3dBackwardWeight(x, dy, dw, db, s)
				tol := tolFactor(s.N * s.outSize())
				compare(t, "dw", dw, dwRef, dwMag, tol)
				compare(t, "db", db, dbRef, dbMag, tol)
				dw2 := randSlice(r, len(dwRef))
				Conv3dBackwardWeight(x, dy, dw2, nil, s)
				compare(t, "dw(db=nil)", dw2, dwRef, dwMag, tol)
			})
		})
	}
}

func TestSgemm(t *testing.T) {
	cases := []struct {
		tA, tB      bool
		m, n, k     int
		alpha, beta float32
		pad         int // extra leading-dimension padding
	}{
		{false, false, 1, 1, 1, 1, 0, 0},
		{false, false, 7, 9, 5, 1, 0, 0},
		{true, false, 13, 17, 3, 0.5, 1, 2},
		{false, true, 6, 16, 300, 1, 0.25, 1},
		{true, true, 150, 37, 260, -2, 0, 3},
		{false, false, 151, 100, 513, 1, 1, 0},
		{false, true, 64, 64, 64, 1, 0, 0},
		{false, false, 5, 5, 0, 1, 0.5, 0},
		{false, false, 5, 5, 5, 0, 2, 0},
	}
	for ci, tc := range cases {
		t.Run(fmt.Sprintf("tA%v_tB%v_%dx%dx%d_a%g_b%g", tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, tc.beta), func(t *testing.T) {
			r := rand.New(rand.NewPCG(4, uint64(ci)))
			ra, ca := tc.m, tc.k
			if tc.tA {
				ra, ca = tc.k, tc.m
			}
			rb, cb := tc.k, tc.n
			if tc.tB {
				rb, cb = tc.n, tc.k
			}
			lda, ldb, ldc := ca+tc.pad, cb+tc.pad, tc.n+tc.pad
			a := randSlice(r, max(1, ra*lda))
			b := randSlice(r, max(1, rb*ldb))
			c0 := randSlice(r, tc.m*ldc)
			if tc.beta == 0 {
				c0[0] = float32(math.NaN()) // must not be read
			}
			at := func(i, k int) float64 {
				if tc.tA {
					return float64(a[k*lda+i])
				}
				return float64(a[i*lda+k])
			}
			bt := func(k, j int) float64 {
				if tc.tB {
					return float64(b[j*ldb+k])
				}
				return float64(b[k*ldb+j])
			}
			ref := make([]float64, len(c0))
			mag := make([]float64, len(c0))
			for i := range tc.m {
				for j := range ldc {
					idx := i*ldc + j
					if j >= tc.n {
						ref[idx], mag[idx] = float64(c0[idx]), 1 // padding must stay untouched
						continue
					}
					var s, sm float64
					for k := range tc.k {
						p := float64(tc.alpha) * at(i, k) * bt(k, j)
						s += p
						sm += math.Abs(p)
					}
					if tc.beta != 0 {
						s += float64(tc.beta) * float64(c0[idx])
						sm += math.Abs(float64(tc.beta) * float64(c0[idx]))
					}
					ref[idx], mag[idx] = s, max(sm, 1e-20)
				}
			}
			forProcs(t, func(t *testing.T) {
				c := append([]float32(nil), c0...)
				Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
				// One more rounding for alpha·a (packing) and beta·c (pre-scaling).
				compare(t, "c", c, ref, mag, tolFactor(tc.k)+2.0/(1<<24))
			})
		})
	}
}

// TestGemmScatteredOutput drives the GEMM driver with C columns that are not
// contiguous (every other element), so every tile goes through the scatter path, with
// B rows that qualify for in-place reading and a bias row of ones.
func TestGemmScatteredOutput(t *testing.T) {
	const m, n, k = 20, 64, 50
	r := rand.New(rand.NewPCG(11, 0))
	a := randSlice(r, m*(k+1))
	b := randSlice(r, k*n)
	forProcs(t, func(t *testing.T) {
		for _, acc := range []bool{false, true} {
			c0 := randSlice(r, m*2*n)
			c := append([]float32(nil), c0...)
			pa := packWhole(mat{data: a, rows: linear(m, k+1, 0), cols: linear(k+1, 1, 0)}, m, k+1, 1)
			kOff := make([]int, k+1)
			for i := range k {
				kOff[i] = i * n
			}
			kOff[k] = onesRow
			crow := make([]int, m)
			for i := range crow {
				crow[i] = i * 2 * n
			}
			g := gemmN{a: pa, n: n, b: mat{data: b, cols: linear(n, 1, 0)}, kOff: kOff, c: c,
				crow: crow, ccol: linear(n, 2, 0), acc: acc}
			g.run(runtime.GOMAXPROCS(0))
			pa.release()
			ref := make([]float64, len(c))
			mag := make([]float64, len(c))
			for i := range m {
				for j := range 2 * n {
					idx := i*2*n + j
					if j%2 == 1 {
						ref[idx], mag[idx] = float64(c0[idx]), 1e-30 // untouched
						continue
					}
					s := float64(a[i*(k+1)+k]) // bias column times the ones row
					sm := math.Abs(s)
					for kk := range k {
						p := float64(a[i*(k+1)+kk]) * float64(b[kk*n+j/2])
						s += p
						sm += math.Abs(p)
					}
					if acc {
						s += float64(c0[idx])
						sm += math.Abs(float64(c0[idx]))
					}
					ref[idx], mag[idx] = s, sm
				}
			}
			compare(t, fmt.Sprintf("c(acc=%v)", acc), c, ref, mag, tolFactor(k+1))
		}
	})
}

// TestMicroKernels checks every kernel set's micro-kernel, for every row count, store
// mode and k remainder of the unrolled loop, against a float64 evaluation.
func TestMicroKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 0))
	for _, set := range availableKernels() {
		mr, nr := set.mr, set.nr
		for _, kc := range []int{1, 3, 4, 5, 8, 9, 256} {
			for h := 1; h <= mr; h++ {
				for _, acc := range []bool{false, true} {
					a := randSlice(r, kc*mr)
					b := randSlice(r, kc*nr)
					ldc := nr + 5
					c0 := randSlice(r, (h+1)*ldc)
					got := append([]float32(nil), c0...)
					set.micro(h, kc, a, b, got, ldc, acc)
					for i := range got {
						row, col := i/ldc, i%ldc
						if row >= h || col >= nr {
							if got[i] != c0[i] {
								t.Fatalf("%s kc=%d h=%d: wrote outside the block at c[%d]", set.name, kc, h, i)
							}
							continue
						}
						var want, mag float64
						for k := range kc {
							p := float64(a[k*mr+row]) * float64(b[k*nr+col])
							want += p
							mag += math.Abs(p)
						}
						if acc {
							want += float64(c0[i])
							mag += math.Abs(float64(c0[i]))
						}
						// A chain of kc float32 FMAs plus the final add: (kc+2)·u·Σ|terms|.
						if d := math.Abs(float64(got[i]) - want); d > float64(kc+2)*mag/(1<<24) {
							t.Fatalf("%s kc=%d h=%d acc=%v: c[%d] = %g, want %g", set.name, kc, h, acc, i, got[i], want)
						}
					}
				}
			}
		}
	}
}

// TestDotKernels checks the dot-product kernels (weight gradient) against float64.
func TestDotKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 0))
	tested := false
	for _, set := range availableKernels() {
		if set.dot == nil {
			continue
		}
		tested = true
		dotMR, dotNR, vec := set.dmr, set.dnr, set.dvec
		for _, kv := range []int{0, 1, 2, 7, 64} {
			lda, ldb, ldc := vec*kv+3, vec*kv+5, dotNR+2
			a := randSlice(r, dotMR*lda)
			b := randSlice(r, dotNR*ldb)
			c0 := randSlice(r, dotMR*ldc)
			got := append([]float32(nil), c0...)
			set.dot(kv, a, lda, b, ldb, got, ldc)
			for i := range dotMR {
				for j := range ldc {
					idx := i*ldc + j
					if j >= dotNR {
						if got[idx] != c0[idx] {
							t.Fatalf("%s kv=%d: wrote outside the tile at c[%d]", set.name, kv, idx)
						}
						continue
					}
					want, mag := float64(c0[idx]), math.Abs(float64(c0[idx]))
					for k := range vec * kv {
						p := float64(a[i*lda+k]) * float64(b[j*ldb+k])
						want += p
						mag += math.Abs(p)
					}
					// Each lane chains kv FMAs, then 4 reduction levels and the add to C.
					if d := math.Abs(float64(got[idx]) - want); d > float64(kv+6)*mag/(1<<24) {
						t.Fatalf("%s kv=%d: c[%d][%d] = %g, want %g", set.name, kv, i, j, got[idx], want)
					}
				}
			}
		}
	}
	if !tested {
		t.Skip("no dot-product kernel in this build or on this CPU")
	}
}

// TestNoLargeAllocations checks that repeated convolutions reuse their scratch: after a
// warm-up call, a call allocates far less than one padded input.
func TestNoLargeAllocations(t *testing.T) {
	s := shape(2, 16, 16, v3(8, 16, 16), c3(3), c3(1), c3(1))
	r := rand.New(rand.NewPCG(6, 0))
	x := randSlice(r, s.N*s.Ci*s.inSize())
	w := randSlice(r, s.Co*s.Ci*s.taps())
	y := make([]float32, s.N*s.Co*s.outSize())
	dw := make([]float32, len(w))
	db := make([]float32, s.Co)
	dx := make([]float32, len(x))
	step := func() {
		Conv3dForward(x, w, nil, y, s)
		Conv3dBackwardData(y, w, dx, s)
		Conv3dBackwardWeight(x, y, dw, db, s)
	}
	for range 3 { // warm-up: workspaces taken in a different order each call settle
		step()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const calls = 5
	for range calls {
		step()
	}
	runtime.ReadMemStats(&after)
	perStep := (after.TotalAlloc - before.TotalAlloc) / calls
	padded := uint64(s.Ci*(s.In[0]+2)*(s.In[1]+2)*(s.In[2]+2)) * 4
	t.Logf("%d bytes allocated per forward+backward step (padded input: %d bytes)", perStep, padded)
	// A GC during the loop may empty the pools once; allow a quarter of one padded input.
	if perStep > padded/4 {
		t.Errorf("%d bytes allocated per step; scratch is not being reused", perStep)
	}
}

// TestConcurrentCalls runs convolutions from several goroutines at once (the scratch
// pools are shared): each result must equal the one computed alone. Forward outputs do
// not depend on how chunks are spread over workers, so equality is exact.
func TestConcurrentCalls(t *testing.T) {
	s := shape(2, 16, 16, v3(4, 8, 16), c3(3), c3(1), c3(1))
	r := rand.New(rand.NewPCG(12, 0))
	const callers = 4
	var xs, want [callers][]float32
	w := randSlice(r, s.Co*s.Ci*s.taps())
	for i := range callers {
		xs[i] = randSlice(r, s.N*s.Ci*s.inSize())
		want[i] = make([]float32, s.N*s.Co*s.outSize())
		Conv3dForward(xs[i], w, nil, want[i], s)
	}
	var got [callers][]float32
	done := make(chan int)
	for i := range callers {
		go func() {
			got[i] = make([]float32, len(want[i]))
			for range 5 {
				Conv3dForward(xs[i], w, nil, got[i], s)
				dx := make([]float32, len(xs[i]))
				Conv3dBackwardData(got[i], w, dx, s)
			}
			done <- i
		}()
	}
	for range callers {
		<-done
	}
	for i := range callers {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("caller %d: y[%d] = %g concurrently, %g alone", i, j, got[i][j], want[i][j])
			}
		}
	}
}
