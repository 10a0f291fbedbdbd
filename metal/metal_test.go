package metal

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/metal/driver"
)

// u is the float32 unit roundoff.
const u = 1.0 / (1 << 24)

// sumTol is the tolerance per unit of Σ|terms| for a float32 sum of L terms: rounding
// errors of random sign grow like √L·u (tiled and split sums do better), so 4u(1+√L) leaves
// margin while one missing, doubled or negated term (≈ Σ|terms|/L) fails for L up to ~10⁴.
func sumTol(L int) float64 { return u * (4 + 4*math.Sqrt(float64(L))) }

// closeTo reports the first element where |got-want| > tol·mag.
func closeTo(got []float32, want, mag []float64, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	for i := range got {
		err := math.Abs(float64(got[i]) - want[i])
		if !(err <= tol*mag[i]+1e-30) {
			return fmt.Errorf("element %d of %d: got %.9g want %.9g (|err| %.3g > %.3g)", i, len(got), got[i], want[i], err, tol*mag[i])
		}
	}
	return nil
}

func randn(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// convCase is one convolution geometry.
type convCase struct {
	n, ci, co int
	in, k     [3]int
	p         compute.Conv
}

func (c convCase) out() [3]int {
	var o [3]int
	for a := range 3 {
		o[a] = compute.OutSize(c.in[a], c.k[a], c.p.Stride[a], c.p.Pad[a])
	}
	return o
}

func (c convCase) String() string {
	return fmt.Sprintf("n%d_ci%d_co%d_in%v_k%v_s%v_p%v", c.n, c.ci, c.co, c.in, c.k, c.p.Stride, c.p.Pad)
}

// convRef computes forward y, backward-data dx and backward-weight dw (with magnitudes
// Σ|terms| for the tolerance) in float64, straight from the definition.
func convRef(c convCase, x, w, bias, dy []float32) (y, ymag, dx, dxmag, dw, dwmag []float64) {
	out := c.out()
	insz, outsz, ksz := c.in[0]*c.in[1]*c.in[2], out[0]*out[1]*out[2], c.k[0]*c.k[1]*c.k[2]
	y, ymag = make([]float64, c.n*c.co*outsz), make([]float64, c.n*c.co*outsz)
	dx, dxmag = make([]float64, c.n*c.ci*insz), make([]float64, c.n*c.ci*insz)
	dw, dwmag = make([]float64, c.co*c.ci*ksz), make([]float64, c.co*c.ci*ksz)
	for n := 0; n < c.n; n++ {
		for o := 0; o < c.co; o++ {
			for op := 0; op < outsz; op++ {
				yi := (n*c.co+o)*outsz + op
				if bias != nil {
					y[yi] = float64(bias[o])
					ymag[yi] = math.Abs(y[yi])
				}
				od, oh, ow := op/(out[1]*out[2]), op/out[2]%out[1], op%out[2]
				for i := 0; i < c.ci; i++ {
					for kd := 0; kd < c.k[0]; kd++ {
						for kh := 0; kh < c.k[1]; kh++ {
							for kw := 0; kw < c.k[2]; kw++ {
								id := od*c.p.Stride[0] - c.p.Pad[0] + kd
								ih := oh*c.p.Stride[1] - c.p.Pad[1] + kh
								iw := ow*c.p.Stride[2] - c.p.Pad[2] + kw
								if id < 0 || ih < 0 || iw < 0 || id >= c.in[0] || ih >= c.in[1] || iw >= c.in[2] {
									continue
								}
								xi := (n*c.ci+i)*insz + (id*c.in[1]+ih)*c.in[2] + iw
								wi := (o*c.ci+i)*ksz + (kd*c.k[1]+kh)*c.k[2] + kw
								v := float64(x[xi]) * float64(w[wi])
								y[yi] += v
								ymag[yi] += math.Abs(v)
								g := float64(dy[yi]) * float64(w[wi])
								dx[xi] += g
								dxmag[xi] += math.Abs(g)
								h := float64(dy[yi]) * float64(x[xi])
								dw[wi] += h
								dwmag[wi] += math.Abs(h)
							}
						}
					}
				}
			}
		}
	}
	return
}

// convCases cross tile edges: M and N above and between the 32 and 64 tile sizes, K not a
// multiple of the 8- or 16-deep slices, anisotropic kernels, strides and paddings.
var convCases = []convCase{
	{n: 2, ci: 5, co: 7, in: [3]int{3, 4, 5}, k: [3]int{3, 3, 3}, p: compute.Conv3x3},
	{n: 1, ci: 3, co: 4, in: [3]int{5, 6, 7}, k: [3]int{4, 4, 4}, p: compute.ConvS2P1},
	{n: 2, ci: 9, co: 33, in: [3]int{2, 5, 9}, k: [3]int{1, 2, 3},
		p: compute.Conv{Stride: [3]int{1, 2, 3}, Pad: [3]int{0, 1, 2}}},
	{n: 3, ci: 4, co: 70, in: [3]int{3, 3, 4}, k: [3]int{3, 3, 3}, p: compute.Conv3x3},
	{n: 1, ci: 40, co: 2, in: [3]int{2, 3, 11}, k: [3]int{2, 2, 2}, p: compute.Conv{Stride: [3]int{1, 1, 1}}},
}

// TestConvVariants runs every kernel variant of the three convolution ops, with the weight
// gradient's reduction split several ways, against the float64 definition.
func TestConvVariants(t *testing.T) {
	drv := newDriver(t)
	variants := []ConvVariant{ConvDirect, ConvTiled, ConvSimd, ConvAuto}
	for _, v := range variants {
		for _, splits := range []int{0, 1, 3} {
			if splits != 0 && v == ConvAuto {
				continue
			}
			dev := New(drv, Options{Conv: v, Splits: splits})
			for ci, c := range convCases {
				t.Run(fmt.Sprintf("%v/splits%d/%v", v, splits, c), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(ci), 7))
					out := c.out()
					xs := randn(r, c.n*c.ci*c.in[0]*c.in[1]*c.in[2])
					ws := randn(r, c.co*c.ci*c.k[0]*c.k[1]*c.k[2])
					bs := randn(r, c.co)
					dys := randn(r, c.n*c.co*out[0]*out[1]*out[2])
					y, ymag, dx, dxmag, dw, dwmag := convRef(c, xs, ws, bs, dys)
					xShape := []int{c.n, c.ci, c.in[0], c.in[1], c.in[2]}
					yShape := []int{c.n, c.co, out[0], out[1], out[2]}
					x := compute.FromHost(dev, xs, xShape...)
					w := compute.FromHost(dev, ws, c.co, c.ci, c.k[0], c.k[1], c.k[2])
					b := compute.FromHost(dev, bs, c.co)
					dy := compute.FromHost(dev, dys, yShape...)
					gy, gdx := dev.Alloc(yShape...), dev.Alloc(xShape...)
					gdw, gdb := dev.Alloc(w.Shape()...), dev.Alloc(c.co)
					dev.Fill(gdw, float32(math.NaN())) // every output must be written
					dev.Conv3d(x, w, b, gy, c.p)
					dev.Conv3dBackwardData(dy, w, gdx, c.p)
					dev.Conv3dBackwardWeight(x, dy, gdw, gdb, c.p)
					kvol := c.k[0] * c.k[1] * c.k[2]
					if err := closeTo(compute.ToHost(gy), y, ymag, sumTol(c.ci*kvol+1)); err != nil {
						t.Errorf("forward: %v", err)
					}
					if err := closeTo(compute.ToHost(gdx), dx, dxmag, sumTol(c.co*kvol)); err != nil {
						t.Errorf("backward data: %v", err)
					}
					if err := closeTo(compute.ToHost(gdw), dw, dwmag, sumTol(len(dys)/c.co)); err != nil {
						t.Errorf("backward weight: %v", err)
					}
					db, dbmag := make([]float64, c.co), make([]float64, c.co)
					per := len(dys) / (c.n * c.co)
					for i, v := range dys {
						db[i/per%c.co] += float64(v)
						dbmag[i/per%c.co] += math.Abs(float64(v))
					}
					if err := closeTo(compute.ToHost(gdb), db, dbmag, sumTol(len(dys)/c.co)); err != nil {
						t.Errorf("backward bias: %v", err)
					}
					for _, tt := range []*compute.Tensor{x, w, b, dy, gy, gdx, gdw, gdb} {
						dev.Release(tt)
					}
					if err := dev.Sync(); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// TestVariantChoice pins the shape rules of ConvAuto.
func TestVariantChoice(t *testing.T) {
	d := New(nil)
	tests := []struct {
		m, n, k int
		want    ConvVariant
	}{
		{1, 100000, 27, ConvDirect},   // one output channel: a tile would be mostly padding
		{16, 16, 16, ConvDirect},      // tiny
		{16, 1 << 20, 27, ConvDirect}, // the autoencoder's first layer: K = 1·27 is too shallow for a tile
		{16, 4096, 432, ConvTiled},    // too few rows for a 32-row simd tile
		{64, 8192, 1728, ConvSimd},    // the velocity model's convolutions
		{128, 2048, 4096, ConvSimd},   // the autoencoder's deepest
	}
	for _, tc := range tests {
		if got := d.variant(tc.m, tc.n, tc.k); got != tc.want {
			t.Errorf("variant(%d, %d, %d) = %v, want %v", tc.m, tc.n, tc.k, got, tc.want)
		}
	}
}

// TestBucket checks the pool's size classes: never smaller than asked, at most 12.5% (or
// 256 bytes) larger, and monotonic.
func TestBucket(t *testing.T) {
	prev := 0
	for size := 0; size < 1<<20; size += 1 + size/7 {
		b := bucket(size)
		if b < size || (b > size+size/8 && b > 256) || b < prev {
			t.Fatalf("bucket(%d) = %d (previous %d)", size, b, prev)
		}
		prev = b
	}
}

// countingDriver counts buffer allocations.
type countingDriver struct {
	driver.Driver
	allocs int
}

func (c *countingDriver) NewBuffer(size int) (driver.Buffer, error) {
	c.allocs++
	return c.Driver.NewBuffer(size)
}

// TestBufferReuse: a training-step-like loop allocates no new device buffers after its
// first iteration, and reused buffers come back zero-filled whether or not work is queued.
func TestBufferReuse(t *testing.T) {
	cd := &countingDriver{Driver: newDriver(t)}
	dev := New(cd)
	x := compute.FromHost(dev, []float32{1, 2, 3, 4, 5}, 5)
	step := func() []float32 {
		tmp := dev.Alloc(5) // must read as zeros even when it reuses a dirty buffer
		dev.AXPY(2, x, tmp)
		out := dev.Alloc(5)
		dev.AXPY(1, tmp, out)
		dev.Release(tmp)
		got := compute.ToHost(out)
		dev.Release(out)
		return got
	}
	for i := 0; i < 4; i++ {
		got := step()
		for j, v := range got {
			if v != 2*float32(j+1) {
				t.Fatalf("iteration %d: got %v, want 2·x", i, got)
			}
		}
		if i == 0 {
			cd.allocs = 0
		}
	}
	if cd.allocs != 0 {
		t.Errorf("%d buffers allocated after the first step, want 0", cd.allocs)
	}
}

// TestUploadWhileQueued: an Upload into a tensor that queued work still reads must not
// change what that work sees (it is staged and copied in order), and no Wait happens.
func TestUploadWhileQueued(t *testing.T) {
	dev := New(newDriver(t))
	x := compute.FromHost(dev, []float32{1, 2, 3}, 3)
	y := dev.Alloc(3)
	dev.AXPY(1, x, y) // y = 1,2,3 once run
	dev.Upload(x, []float32{10, 20, 30})
	if dev.queued == 0 {
		t.Fatal("Upload waited for queued work instead of staging")
	}
	dev.AXPY(1, x, y) // y = 11,22,33
	// A tensor released while queued work uses it and reallocated at once must also be
	// zero when the queue reaches it, and must not disturb the pending AXPY.
	dev.Release(x)
	z := dev.Alloc(3)
	dev.AXPY(1, z, y)
	got := compute.ToHost(y)
	want := []float32{11, 22, 33}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestOpenElsewhere(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("Metal may exist here")
	}
	_, err := Open()
	if err == nil || !strings.Contains(err.Error(), "use --device cpu") || !strings.Contains(err.Error(), runtime.GOOS) {
		t.Errorf("Open() error = %v, want one naming the platform and suggesting --device cpu", err)
	}
}
