//go:build linux && cgo

package emu

import (
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/latentad/latentad/metal/driver"
	"github.com/latentad/latentad/metal/emu/internal/testkernels"
	"github.com/latentad/latentad/shaders"
)

// newTestDriver serves the emulator's own test kernels (metal/emu/testdata).
func newTestDriver(t testing.TB, order string) driver.Driver {
	t.Helper()
	d, err := NewWith(Options{Tables: testkernels.Tables(), Order: order})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// args packs uint32/float32 fields as the MSL struct lays them out (all 4-byte fields).
func args(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		switch x := v.(type) {
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, x)
		case int:
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		case float32:
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		default:
			panic("args: unsupported field type")
		}
	}
	return b
}

func floatBuf(t testing.TB, d driver.Driver, vals []float32) driver.Buffer {
	t.Helper()
	b, err := d.NewBuffer(4 * len(vals))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Release)
	copy(floats(b), vals)
	return b
}

func floats(b driver.Buffer) []float32 {
	if b.Len() == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(b.Contents()), b.Len()/4)
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

func kern(t testing.TB, d driver.Driver, name string) driver.Kernel {
	t.Helper()
	k, err := d.Kernel(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func refs(bs ...driver.Buffer) []driver.Ref {
	r := make([]driver.Ref, len(bs))
	for i, b := range bs {
		r[i] = driver.Ref{Buf: b}
	}
	return r
}

func TestAxpy(t *testing.T) {
	for _, order := range []string{"forward", "reverse", "shuffle"} {
		t.Run(order, func(t *testing.T) {
			d := newTestDriver(t, order)
			r := rand.New(rand.NewSource(1))
			n := 1000 // not a multiple of the group size: the kernel's guard matters
			x, y := randFloats(r, n), randFloats(r, n)
			bx, by := floatBuf(t, d, x), floatBuf(t, d, y)
			a := float32(0.75)
			d.Dispatch(kern(t, d, "axpy"), args(n, a), refs(bx, by), [3]int{(n + 63) / 64, 1, 1}, [3]int{64, 1, 1})
			if err := d.Wait(); err != nil {
				t.Fatal(err)
			}
			got := floats(by)
			for i := range n {
				// fma rounds once; a·x+y in float64 then rounded to float32 is the same value
				// up to one ulp of double rounding.
				want := float32(float64(a)*float64(x[i]) + float64(y[i]))
				if math.Abs(float64(got[i]-want)) > 1e-6 {
					t.Fatalf("y[%d] = %v, want %v", i, got[i], want)
				}
			}
		})
	}
}

func TestBuiltins(t *testing.T) {
	d := newTestDriver(t, "")
	groups, threads := [3]int{3, 2, 2}, [3]int{8, 5, 1} // 40 threads: a partial second simdgroup
	gx, gy, gz := groups[0]*threads[0], groups[1]*threads[1], groups[2]*threads[2]
	out, err := d.NewBuffer(gx * gy * gz * 22 * 4)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	d.Dispatch(kern(t, d, "builtins"), args(gx, gy), refs(out), groups, threads)
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	words := unsafe.Slice((*uint32)(out.Contents()), out.Len()/4)
	for z := range gz {
		for y := range gy {
			for x := range gx {
				lin := (z*gy+y)*gx + x
				o := words[lin*22 : lin*22+22]
				tx, ty, tz := x%threads[0], y%threads[1], z%threads[2]
				tiitg := (tz*threads[1]+ty)*threads[0] + tx
				want := []int{x, y, z, tx, ty, x / threads[0], y / threads[1], z / threads[2],
					threads[0], threads[1], threads[2], groups[0], groups[1], groups[2], gx, gy, gz,
					tiitg, tiitg % 32, tiitg / 32, 32, y*1000 + x}
				for i, w := range want {
					if int(o[i]) != w {
						t.Fatalf("thread (%d,%d,%d) word %d = %d, want %d (all: %v)", x, y, z, i, o[i], w, o)
					}
				}
			}
		}
	}
}

func TestVecMath(t *testing.T) {
	d := newTestDriver(t, "")
	r := rand.New(rand.NewSource(2))
	n := 37
	in := randFloats(r, 4*n)
	for i := range in {
		in[i] *= 3
	}
	bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, 4*n))
	d.Dispatch(kern(t, d, "vec_math"), args(n), refs(bin, bout), [3]int{2, 1, 1}, [3]int{32, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	got := floats(bout)
	clamp := func(v float64) float64 { return math.Max(-1, math.Min(1, v)) }
	for i := range n {
		v := in[4*i : 4*i+4]
		x, y, z, w := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		m0, m1 := math.Max(x, z), math.Max(y, w)
		want := []float64{z*2 + w + 1 - clamp(x), y*2 + w + 1 - clamp(y), x*2 + w + 1 - clamp(z), m0*m0 + m1*m1 + 1 - clamp(w)}
		for c := range 4 {
			// float32 arithmetic on values below ~20: a few ulps.
			if math.Abs(float64(got[4*i+c])-want[c]) > 1e-5 {
				t.Fatalf("out[%d].%d = %v, want %v", i, c, got[4*i+c], want[c])
			}
		}
	}
}

// TestQualifiedNames runs a kernel that spells types and functions with metal::.
func TestQualifiedNames(t *testing.T) {
	d := newTestDriver(t, "")
	y := floatBuf(t, d, []float32{3, -4, 1, 9})
	d.Dispatch(kern(t, d, "qualified"), nil, refs(y), [3]int{1, 1, 1}, [3]int{2, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	// max(x, y) and sqrt(|y|) are exact for these values.
	want := []float32{3, 2, 9, 3}
	for i, g := range floats(y) {
		if g != want[i] {
			t.Fatalf("y = %v, want %v", floats(y), want)
		}
	}
}

// refGEMM is C = A·B in float64.
func refGEMM(a, b []float32, m, n, k int, bt bool) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			s := 0.0
			for p := range k {
				bv := b[p*n+j]
				if bt {
					bv = b[j*k+p]
				}
				s += float64(a[i*k+p]) * float64(bv)
			}
			c[i*n+j] = s
		}
	}
	return c
}

// checkGEMM compares with the float64 reference: float32 accumulation of k products of
// values in [-1, 1] errs by at most about k·2⁻²⁴·Σ|a·b| ≤ k²·6e-8, so 1e-6·k bounds it for
// the sizes here (k ≤ 80) with room for the summation order.
func checkGEMM(t *testing.T, got []float32, want []float64, k int) {
	t.Helper()
	tol := 1e-6 * float64(k)
	for i, w := range want {
		if math.Abs(float64(got[i])-w) > tol {
			t.Fatalf("C[%d] = %v, want %v (tolerance %g)", i, got[i], w, tol)
		}
	}
}

func TestTiledGEMM(t *testing.T) {
	for _, order := range []string{"forward", "shuffle"} {
		t.Run(order, func(t *testing.T) {
			d := newTestDriver(t, order)
			r := rand.New(rand.NewSource(3))
			m, n, k := 37, 45, 53 // not multiples of the tile: exercises the edge guards
			a, b := randFloats(r, m*k), randFloats(r, k*n)
			ba, bb, bc := floatBuf(t, d, a), floatBuf(t, d, b), floatBuf(t, d, make([]float32, m*n))
			d.Dispatch(kern(t, d, "tgemm"), args(m, n, k), refs(ba, bb, bc), [3]int{(n + 15) / 16, (m + 15) / 16, 1}, [3]int{16, 16, 1})
			if err := d.Wait(); err != nil {
				t.Fatal(err)
			}
			checkGEMM(t, floats(bc), refGEMM(a, b, m, n, k, false), k)
		})
	}
}

func TestReductions(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	n := 1000
	in := randFloats(r, n)
	groups := (n + 255) / 256
	want := make([]float64, groups)
	for i, v := range in {
		want[i/256] += float64(v)
	}
	for _, name := range []string{"simd_reduce", "tree_reduce"} {
		for _, order := range []string{"forward", "reverse", "shuffle"} {
			t.Run(name+"/"+order, func(t *testing.T) {
				d := newTestDriver(t, order)
				bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, groups))
				d.Dispatch(kern(t, d, name), args(n, 0), refs(bin, bout), [3]int{groups, 1, 1}, [3]int{256, 1, 1})
				if err := d.Wait(); err != nil {
					t.Fatal(err)
				}
				for g, w := range want {
					// 256 float32 additions of values in [-1, 1]: error ≤ 256·2⁻²⁴·256 ≈ 4e-3 at
					// worst, far less in practice; 1e-4 still catches any lost or doubled term.
					if got := floats(bout)[g]; math.Abs(float64(got)-w) > 1e-4 {
						t.Fatalf("group %d sum = %v, want %v", g, got, w)
					}
				}
			})
		}
	}
}

func TestShuffles(t *testing.T) {
	d := newTestDriver(t, "shuffle")
	r := rand.New(rand.NewSource(5))
	const n = 96 // three simdgroups in one threadgroup
	in := randFloats(r, n)
	for _, delta := range []int{1, 3, 16} {
		bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, 4*n))
		d.Dispatch(kern(t, d, "shuffles"), args(n, delta), refs(bin, bout), [3]int{1, 1, 1}, [3]int{n, 1, 1})
		if err := d.Wait(); err != nil {
			t.Fatal(err)
		}
		got := floats(bout)
		for i := range n {
			lane, base := i%32, i-i%32
			down := in[i] // lanes past the end keep their own value
			if lane+delta < 32 {
				down = in[i+delta]
			}
			xor := in[base+(lane^delta)]
			pre := 0.0
			mx := float32(math.Inf(-1))
			for j := range 32 {
				if j < lane {
					pre += float64(in[base+j])
				}
				mx = max(mx, in[base+j])
			}
			if got[4*i] != down || got[4*i+1] != xor || got[4*i+3] != mx {
				t.Fatalf("delta %d thread %d: down %v xor %v max %v, want %v %v %v", delta, i, got[4*i], got[4*i+1], got[4*i+3], down, xor, mx)
			}
			if math.Abs(float64(got[4*i+2])-pre) > 1e-5 { // ≤ 31 float32 additions
				t.Fatalf("thread %d: prefix sum %v, want %v", i, got[4*i+2], pre)
			}
		}
	}
	// The shuffle-down ladder leaves each simdgroup's sum in lane 0.
	bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, n/32))
	d.Dispatch(kern(t, d, "shuffle_reduce"), nil, refs(bin, bout), [3]int{1, 1, 1}, [3]int{n, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	for s := range n / 32 {
		want := 0.0
		for j := range 32 {
			want += float64(in[32*s+j])
		}
		if got := floats(bout)[s]; math.Abs(float64(got)-want) > 1e-5 {
			t.Fatalf("simdgroup %d: shuffle_down sum %v, want %v", s, got, want)
		}
	}
}

func TestAtomics(t *testing.T) {
	d, err := NewWith(Options{Tables: testkernels.Tables(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n, groups := 1000, 16
	count, sum := floatBuf(t, d, make([]float32, 1)), floatBuf(t, d, make([]float32, 1))
	per := floatBuf(t, d, make([]float32, groups))
	d.Dispatch(kern(t, d, "atomics"), args(n), refs(count, sum, per), [3]int{groups, 1, 1}, [3]int{64, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	if c := *(*uint32)(count.Contents()); c != uint32(n) {
		t.Errorf("device atomic count = %d, want %d", c, n)
	}
	// Sums of 0.25 up to 250 are exact in float32, whatever the order.
	if s := floats(sum)[0]; s != 0.25*float32(n) {
		t.Errorf("device atomic float sum = %v, want %v", s, 0.25*float32(n))
	}
	pg := unsafe.Slice((*uint32)(per.Contents()), groups)
	for g := range groups {
		want := uint32(min(64, max(0, n-64*g)))
		if pg[g] != want {
			t.Errorf("group %d threadgroup atomic = %d, want %d", g, pg[g], want)
		}
	}
}

func TestDivergentSimdSum(t *testing.T) {
	d := newTestDriver(t, "shuffle")
	r := rand.New(rand.NewSource(8))
	const n, active = 64, 12
	in := randFloats(r, n)
	bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, n))
	d.Dispatch(kern(t, d, "partial_sum"), args(n, active), refs(bin, bout), [3]int{1, 1, 1}, [3]int{n, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, got := range floats(bout) {
		lane, base := i%32, i-i%32
		want := float64(in[i])
		if lane < active {
			want = 0
			for j := range active {
				want += float64(in[base+j])
			}
		}
		if math.Abs(float64(got)-want) > 1e-5 { // ≤ 12 float32 additions
			t.Fatalf("thread %d = %v, want %v", i, got, want)
		}
	}
}

func TestSplitSimd(t *testing.T) {
	d := newTestDriver(t, "shuffle")
	r := rand.New(rand.NewSource(10))
	const n = 64
	in := randFloats(r, n)
	bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, n))
	d.Dispatch(kern(t, d, "split_simd"), nil, refs(bin, bout), [3]int{1, 1, 1}, [3]int{n, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, got := range floats(bout) {
		base := i - i%16 // the half-simdgroup i belongs to
		sum, mx := 0.0, float32(math.Inf(-1))
		for j := range 16 {
			sum += float64(in[base+j])
			mx = max(mx, in[base+j])
		}
		if i%32 < 16 && math.Abs(float64(got)-sum) > 1e-5 { // ≤ 16 float32 additions
			t.Fatalf("lane %d: simd_sum of its half = %v, want %v", i, got, sum)
		}
		if i%32 >= 16 && got != mx {
			t.Fatalf("lane %d: simd_max of its half = %v, want %v", i, got, mx)
		}
	}
}

func TestSimdgroupMatrix(t *testing.T) {
	d := newTestDriver(t, "")
	r := rand.New(rand.NewSource(6))
	m, n, k := 24, 32, 40
	for _, bt := range []bool{false, true} {
		a, b := randFloats(r, m*k), randFloats(r, k*n)
		ba, bb, bc := floatBuf(t, d, a), floatBuf(t, d, b), floatBuf(t, d, make([]float32, m*n))
		flag := 0
		if bt {
			flag = 1
		}
		d.Dispatch(kern(t, d, "simd_matmul"), args(m, n, k, flag), refs(ba, bb, bc), [3]int{n / 16, m / 8, 1}, [3]int{64, 1, 1})
		if err := d.Wait(); err != nil {
			t.Fatal(err)
		}
		checkGEMM(t, floats(bc), refGEMM(a, b, m, n, k, bt), k)
	}
}

// TestOrderExposesMissingBarrier: shift_race reads a neighbour's threadgroup slot without a
// barrier. In forward order the neighbour always ran first, so it passes by luck; reverse and
// shuffled orders must expose it, while shift_ok (with the barrier) passes in every order.
func TestOrderExposesMissingBarrier(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	n := 256
	in := randFloats(r, n)
	want := make([]float32, n)
	for i := range n {
		want[i] = -1
		if i%64 != 0 {
			want[i] = in[i-1]
		}
	}
	run := func(order, name string) int {
		d := newTestDriver(t, order)
		bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, n))
		d.Dispatch(kern(t, d, name), args(n), refs(bin, bout), [3]int{n / 64, 1, 1}, [3]int{64, 1, 1})
		if err := d.Wait(); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, g := range floats(bout) {
			if g != want[i] {
				bad++
			}
		}
		return bad
	}
	for _, order := range []string{"forward", "reverse", "shuffle"} {
		if bad := run(order, "shift_ok"); bad != 0 {
			t.Errorf("shift_ok in %s order: %d wrong elements", order, bad)
		}
	}
	if bad := run("forward", "shift_race"); bad != 0 {
		t.Errorf("shift_race in forward order: %d wrong elements; the test premise (passes by luck in order) broke", bad)
	}
	for _, order := range []string{"reverse", "shuffle"} {
		if bad := run(order, "shift_race"); bad == 0 {
			t.Errorf("shift_race in %s order gave the right answer: the missing barrier went unnoticed", order)
		}
	}
	// The environment variable selects the order when Options.Order is empty.
	t.Setenv("LATENTAD_EMU_ORDER", "reverse")
	if bad := run("", "shift_race"); bad == 0 {
		t.Errorf("LATENTAD_EMU_ORDER=reverse did not reverse the thread order")
	}
}

func TestDivergentBarrierIsAnError(t *testing.T) {
	d := newTestDriver(t, "")
	out := floatBuf(t, d, make([]float32, 64))
	done := make(chan error, 1)
	go func() {
		d.Dispatch(kern(t, d, "divergent_barrier"), args(64), refs(out), [3]int{2, 1, 1}, [3]int{64, 1, 1})
		done <- d.Wait()
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("divergent barriers ran without an error")
		}
		for _, want := range []string{"deadlock", "divergent_barrier", "faults.metal:15 (threads 0-15)", "faults.metal:17 (threads 16-63)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("divergent barriers hung instead of reporting a deadlock")
	}
	// The driver stays usable after the fault.
	d.Dispatch(kern(t, d, "early_exit"), args(40), refs(out), [3]int{1, 1, 1}, [3]int{64, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, g := range floats(out)[:40] {
		if g != float32(39-i) {
			t.Fatalf("early_exit out[%d] = %v, want %v", i, g, 39-i)
		}
	}
}

// TestUninitializedThreadgroupMemory: reads of threadgroup memory that no thread of the group
// wrote give NaN (the GPU gives garbage) rather than whatever the OS thread left there.
func TestUninitializedThreadgroupMemory(t *testing.T) {
	d := newTestDriver(t, "")
	out := floatBuf(t, d, make([]float32, 64))
	k := kern(t, d, "uninit_read")
	for run := range 2 {
		d.Dispatch(k, args(64), refs(out), [3]int{3, 1, 1}, [3]int{64, 1, 1})
		if err := d.Wait(); err != nil {
			t.Fatal(err)
		}
		for i, g := range floats(out) {
			if i < 32 && !math.IsNaN(float64(g)) {
				t.Fatalf("run %d: out[%d] = %v read an unwritten slot, want NaN", run, i, g)
			}
			if i >= 32 && g != float32(63-i) {
				t.Fatalf("run %d: out[%d] = %v, want %v", run, i, g, 63-i)
			}
		}
	}
}

// TestOutOfBoundsWriteCrashes re-runs this test binary in a child that dispatches a kernel
// writing past the end of its buffer; the guard page must kill the child.
func TestOutOfBoundsWriteCrashes(t *testing.T) {
	if os.Getenv("LATENTAD_EMU_OOB_CHILD") == "1" {
		d, err := NewWith(Options{Tables: testkernels.Tables()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.NewBuffer(100 * 4)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := d.Kernel("oob_write")
		// 128 threads write 128 floats into a 100-float buffer.
		d.Dispatch(k, args(100), refs(b), [3]int{1, 1, 1}, [3]int{128, 1, 1})
		_ = d.Wait()
		os.Stdout.WriteString("CHILD SURVIVED\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfBoundsWriteCrashes$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LATENTAD_EMU_OOB_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ran := err.(*exec.ExitError); !ran {
			// e.g. a cross-built binary under qemu without binfmt: the child never started.
			t.Skipf("cannot re-run the test binary as a child: %v", err)
		}
	}
	if err == nil || strings.Contains(string(out), "CHILD SURVIVED") {
		t.Fatalf("an out-of-bounds write did not crash the child:\n%s", out)
	}
	if !strings.Contains(string(out), "SIGSEGV") {
		t.Fatalf("child failed, but not with SIGSEGV:\n%s", out)
	}
}

func TestDispatchErrors(t *testing.T) {
	d := newTestDriver(t, "")
	b := floatBuf(t, d, make([]float32, 64))
	axpy := kern(t, d, "axpy")
	cases := []struct {
		name    string
		args    []byte
		bufs    []driver.Ref
		threads [3]int
		want    string
	}{
		{"args size", args(64), refs(b, b), [3]int{64, 1, 1}, "argument struct is 4 bytes"},
		{"missing buffer", args(64, float32(1)), refs(b), [3]int{64, 1, 1}, "uses buffer(2)"},
		{"too many threads", args(64, float32(1)), refs(b, b), [3]int{1025, 1, 1}, "exceeds its MaxThreads 1024"},
		{"zero threads", args(64, float32(1)), refs(b, b), [3]int{0, 1, 1}, "dimension < 1"},
		{"offset", args(64, float32(1)), []driver.Ref{{Buf: b, Offset: 4096}, {Buf: b}}, [3]int{64, 1, 1}, "offset 4096 outside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.Dispatch(axpy, c.args, c.bufs, [3]int{1, 1, 1}, c.threads)
			err := d.Wait()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	// [[max_total_threads_per_threadgroup(64)]] on shift_ok limits its groups.
	so := kern(t, d, "shift_ok")
	if so.MaxThreads() != 64 || axpy.MaxThreads() != MaxThreads {
		t.Errorf("MaxThreads: shift_ok %d (want 64), axpy %d (want %d)", so.MaxThreads(), axpy.MaxThreads(), MaxThreads)
	}
	d.Dispatch(so, args(128), refs(b, b), [3]int{1, 1, 1}, [3]int{128, 1, 1})
	if err := d.Wait(); err == nil || !strings.Contains(err.Error(), "exceeds its MaxThreads 64") {
		t.Errorf("128 threads for shift_ok: %v", err)
	}
	if _, err := d.Kernel("no_such_kernel"); err == nil || !strings.Contains(err.Error(), "go generate ./metal/emu/") {
		t.Fatalf("unknown kernel: %v", err)
	}
	if _, err := NewWith(Options{Tables: testkernels.Tables(), Order: "sideways"}); err == nil {
		t.Fatal("an unknown order was accepted")
	}
}

// TestShaderRegistry checks that New serves every kernel of shaders/*.metal.
func TestShaderRegistry(t *testing.T) {
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names := shaders.Kernels()
	if len(names) == 0 {
		t.Fatal("shaders.Kernels() found no kernels")
	}
	for _, n := range names {
		if _, err := d.Kernel(n); err != nil {
			t.Error(err)
		}
	}
}

// TestLargestGroup runs a barrier kernel with 1024 threads, the most a group may have.
func TestLargestGroup(t *testing.T) {
	d := newTestDriver(t, "shuffle")
	r := rand.New(rand.NewSource(9))
	n := 4096
	in := randFloats(r, n)
	bin, bout := floatBuf(t, d, in), floatBuf(t, d, make([]float32, n/32))
	// shuffle_reduce leaves each simdgroup's sum in its lane 0.
	d.Dispatch(kern(t, d, "shuffle_reduce"), nil, refs(bin, bout), [3]int{n / 1024, 1, 1}, [3]int{1024, 1, 1})
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	for s, got := range floats(bout) {
		want := 0.0
		for j := range 32 {
			want += float64(in[32*s+j])
		}
		if math.Abs(float64(got)-want) > 1e-5 {
			t.Fatalf("simdgroup %d: %v, want %v", s, got, want)
		}
	}
}

// Benchmarks measure the emulator's speed (go test -run ^$ -bench . ./metal/emu/). Besides
// wall-clock rates they report rates per CPU-second (…/core), which stay meaningful on a
// shared, loaded machine.

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func BenchmarkAxpy(b *testing.B) {
	d := newTestDriver(b, "")
	n := 1 << 22
	r := rand.New(rand.NewSource(1))
	bx, by := floatBuf(b, d, randFloats(r, n)), floatBuf(b, d, randFloats(r, n))
	k := kern(b, d, "axpy")
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for range b.N {
		d.Dispatch(k, args(n, float32(0.5)), refs(bx, by), [3]int{n / 256, 1, 1}, [3]int{256, 1, 1})
		if err := d.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
	b.ReportMetric(float64(n)*float64(b.N)/(cpuSeconds()-cpu0)/1e6, "Melem/s/core")
}

func benchGEMM(b *testing.B, name string, size int, groups, threads [3]int, extra ...any) {
	d := newTestDriver(b, "")
	r := rand.New(rand.NewSource(1))
	m := size
	ba, bb, bc := floatBuf(b, d, randFloats(r, m*m)), floatBuf(b, d, randFloats(r, m*m)), floatBuf(b, d, make([]float32, m*m))
	k := kern(b, d, name)
	a := args(append([]any{m, m, m}, extra...)...)
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for range b.N {
		d.Dispatch(k, a, refs(ba, bb, bc), groups, threads)
		if err := d.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(m*m*m)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(2*float64(m*m*m)*float64(b.N)/(cpuSeconds()-cpu0)/1e9, "GFLOP/s/core")
}

func BenchmarkTiledGEMM256(b *testing.B) {
	benchGEMM(b, "tgemm", 256, [3]int{16, 16, 1}, [3]int{16, 16, 1})
}

func BenchmarkSimdgroupMatmul128(b *testing.B) {
	benchGEMM(b, "simd_matmul", 128, [3]int{128 / 16, 128 / 8, 1}, [3]int{64, 1, 1}, 0)
}

// BenchmarkBarrier reports the cost of one threadgroup_barrier per thread (two fiber
// switches' worth of scheduling), for groups of 256 threads.
func BenchmarkBarrier(b *testing.B) {
	d := newTestDriver(b, "")
	out := floatBuf(b, d, make([]float32, 1))
	k := kern(b, d, "barriers")
	const groups, threads, iters = 16, 256, 100
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for range b.N {
		d.Dispatch(k, args(0, 0, iters), refs(out), [3]int{groups, 1, 1}, [3]int{threads, 1, 1})
		if err := d.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N*groups*threads*iters), "ns/thread-barrier")
}
