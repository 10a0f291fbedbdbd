package devicetest_test

import (
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/compute/devicetest"
	"github.com/latentad/latentad/fallback"
)

// The suite must catch broken backends, not only pass correct ones. Each mutant below is
// the CPU device with one plausible bug; TestMutantsFail runs the suite's affected family
// on it in a child process and requires a failure. TestMutant is that child.

const mutantEnv = "LATENTAD_DEVICETEST_MUTANT"

var mutants = []struct{ name, family string }{
	{"none", "Elementwise"}, // control: the unmodified device passes
	{"axpy-overrun", "Elementwise"},
	{"copy-ignores-offset", "Elementwise"},
	{"silu-backward-from-y", "Activations"},
	{"tanh-backward-from-x", "Activations"},
	{"sumchannels-drops-sample", "Reductions"},
	{"meansample-divides-by-n-1", "Reductions"},
	{"welford-old-mean", "Welford"},
	{"gemm-reads-c-at-beta-0", "Gemm"},
	{"conv-ignores-bias", "Conv3d"},
	{"conv-flipped-kernel", "Conv3d"},
	{"conv-backward-data-accumulates", "Conv3d"},
	{"conv-backward-weight-drops-sample", "Conv3d"},
	{"conv-backward-weight-no-db", "Conv3d"},
	{"groupnorm-eps-x10", "GroupNorm"},
	{"groupnorm-float32-one-pass-variance", "GroupNorm"},
	{"groupnorm-backward-swaps-dgamma-dbeta", "GroupNorm"},
	{"groupnorm-silu-bias-per-channel", "GroupNormSiLU"},
	{"groupnorm-silu-pre-after-silu", "GroupNormSiLU"},
	{"adam-float32-complement", "Adam"},
}

func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("runs only as the child of TestMutantsFail")
	}
	devicetest.Run(t, &mutant{fallback.New(), name})
}

func TestMutantsFail(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("child process")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$/^"+m.family+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			failed := err != nil && strings.Contains(string(out), "--- FAIL")
			if m.name == "none" {
				if err != nil {
					t.Fatalf("the unmodified device failed %s:\n%s", m.family, out)
				}
				return
			}
			if !failed {
				t.Errorf("the suite's %s tests did not catch mutant %q (err %v):\n%s", m.family, m.name, err, tail(out))
			}
		})
	}
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

type mutant struct {
	compute.Device
	name string
}

func (m *mutant) AXPY(a float32, x, y *compute.Tensor) {
	if m.name == "axpy-overrun" {
		x1 := compute.NewTensor(m.Device, x.Buffer(), x.Offset(), []int{x.Len() + 1})
		y1 := compute.NewTensor(m.Device, y.Buffer(), y.Offset(), []int{y.Len() + 1})
		if m.fits(x1) && m.fits(y1) {
			x, y = x1, y1
		}
	}
	m.Device.AXPY(a, x, y)
}

// fits reports whether t lies within its buffer: the CPU device panics on a window past it.
func (m *mutant) fits(t *compute.Tensor) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	m.Device.(compute.HostMemory).HostSlice(t)
	return true
}

func (m *mutant) Copy(dst, src *compute.Tensor) {
	if m.name == "copy-ignores-offset" {
		src = compute.NewTensor(m.Device, src.Buffer(), 0, src.Shape())
	}
	m.Device.Copy(dst, src)
}

func (m *mutant) ActBackward(act compute.Act, x, y, dy, dx *compute.Tensor) {
	switch {
	case m.name == "silu-backward-from-y" && act == compute.SiLU:
		x = y
	case m.name == "tanh-backward-from-x" && act == compute.Tanh:
		y = x
	}
	m.Device.ActBackward(act, x, y, dy, dx)
}

func (m *mutant) SumChannels(x, out *compute.Tensor) {
	if m.name == "sumchannels-drops-sample" && x.Dim(0) > 1 {
		x = x.Sample(0, x.Dim(0)-1)
	}
	m.Device.SumChannels(x, out)
}

func (m *mutant) MeanSample(x, out *compute.Tensor) {
	m.Device.MeanSample(x, out)
	if per := x.Len() / x.Dim(0); m.name == "meansample-divides-by-n-1" && per > 1 {
		m.Device.AXPBY(float32(per)/float32(per-1), out, 0, out, out)
	}
}

func (m *mutant) Welford(x, mean, m2 *compute.Tensor, k int) {
	if m.name != "welford-old-mean" {
		m.Device.Welford(x, mean, m2, k)
		return
	}
	// M2 += (x-mean_old)², the classic slip.
	xs, ms, m2s := compute.ToHost(x), compute.ToHost(mean), compute.ToHost(m2)
	for i := range xs {
		d := xs[i] - ms[i]
		ms[i] += d / float32(k)
		m2s[i] += d * d
	}
	m.Upload(mean, ms)
	m.Upload(m2, m2s)
}

func (m *mutant) Gemm(ta, tb bool, alpha float32, a, b *compute.Tensor, beta float32, c *compute.Tensor) {
	if m.name == "gemm-reads-c-at-beta-0" && beta == 0 {
		beta = math.SmallestNonzeroFloat32 // so NaN in C leaks through
	}
	m.Device.Gemm(ta, tb, alpha, a, b, beta, c)
}

func (m *mutant) Conv3d(x, w, bias, y *compute.Tensor, p compute.Conv) {
	switch m.name {
	case "conv-ignores-bias":
		bias = nil
	case "conv-flipped-kernel": // true convolution instead of PyTorch's cross-correlation
		ws := compute.ToHost(w)
		kw := w.Dim(4)
		for i := 0; i < len(ws); i += kw {
			for a, b := i, i+kw-1; a < b; a, b = a+1, b-1 {
				ws[a], ws[b] = ws[b], ws[a]
			}
		}
		w = compute.FromHost(m.Device, ws, w.Shape()...)
	}
	m.Device.Conv3d(x, w, bias, y, p)
}

func (m *mutant) Conv3dBackwardData(dy, w, dx *compute.Tensor, p compute.Conv) {
	if m.name != "conv-backward-data-accumulates" {
		m.Device.Conv3dBackwardData(dy, w, dx, p)
		return
	}
	tmp := m.Alloc(dx.Shape()...)
	m.Device.Conv3dBackwardData(dy, w, tmp, p)
	m.Device.AXPY(1, tmp, dx)
}

func (m *mutant) Conv3dBackwardWeight(x, dy, dw, db *compute.Tensor, p compute.Conv) {
	switch {
	case m.name == "conv-backward-weight-drops-sample" && x.Dim(0) > 1:
		x, dy = x.Sample(1, x.Dim(0)), dy.Sample(1, dy.Dim(0))
	case m.name == "conv-backward-weight-no-db":
		db = nil
	}
	m.Device.Conv3dBackwardWeight(x, dy, dw, db, p)
}

func (m *mutant) GroupNormForward(x, gamma, beta, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	switch m.name {
	case "groupnorm-eps-x10":
		eps *= 10
	case "groupnorm-float32-one-pass-variance": // E[x²]-E[x]² in float32: cancels
		xs, gs, bs := compute.ToHost(x), compute.ToHost(gamma), compute.ToHost(beta)
		n, c := x.Dim(0), x.Dim(1)
		size := len(xs) / (n * groups)
		sp := size / (c / groups)
		ys, ms, rs := make([]float32, len(xs)), make([]float32, n*groups), make([]float32, n*groups)
		for r := range n * groups {
			var s, s2 float32
			for _, v := range xs[r*size : (r+1)*size] {
				s += v
				s2 += v * v
			}
			mu := s / float32(size)
			ms[r] = mu
			rs[r] = float32(1 / math.Sqrt(float64(s2/float32(size)-mu*mu+eps)))
			for i := r * size; i < (r+1)*size; i++ {
				ch := (i / sp) % c
				ys[i] = (xs[i]-mu)*rs[r]*gs[ch] + bs[ch]
			}
		}
		m.Upload(y, ys)
		m.Upload(mean, ms)
		m.Upload(rstd, rs)
		return
	}
	m.Device.GroupNormForward(x, gamma, beta, y, mean, rstd, groups, eps)
}

func (m *mutant) GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta *compute.Tensor, groups int) {
	if m.name == "groupnorm-backward-swaps-dgamma-dbeta" {
		dgamma, dbeta = dbeta, dgamma
	}
	m.Device.GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta, groups)
}

func (m *mutant) GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	switch {
	case m.name == "groupnorm-silu-bias-per-channel" && bias != nil:
		// Indexes the bias by channel only: every sample gets sample 0's row.
		bs := compute.ToHost(bias)
		c := bias.Dim(1)
		for i := c; i < len(bs); i++ {
			bs[i] = bs[i%c]
		}
		bias = compute.FromHost(m.Device, bs, bias.Shape()...)
	case m.name == "groupnorm-silu-pre-after-silu" && pre != nil:
		// Keeps the activation instead of its input (what SiLU's backward must not get).
		m.Device.GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd, groups, eps)
		m.Device.Copy(pre, y)
		return
	}
	m.Device.GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd, groups, eps)
}

func (m *mutant) Adam(p, g, mm, v *compute.Tensor, a compute.AdamArgs) {
	if m.name != "adam-float32-complement" {
		m.Device.Adam(p, g, mm, v, a)
		return
	}
	// 1-β formed from the float32 β instead of the decimal PyTorch starts from.
	ps, gs, ms, vs := compute.ToHost(p), compute.ToHost(g), compute.ToHost(mm), compute.ToHost(v)
	for i := range ps {
		gi := gs[i] + a.WeightDecay*ps[i]
		ms[i] = a.Beta1*ms[i] + (1-a.Beta1)*gi
		vs[i] = a.Beta2*vs[i] + (1-a.Beta2)*gi*gi
		den := float32(math.Sqrt(float64(vs[i])))/a.BC2Sqrt + a.Eps
		ps[i] -= a.StepSize * ms[i] / den
	}
	m.Upload(p, ps)
	m.Upload(mm, ms)
	m.Upload(v, vs)
}

// TestSmallOptions runs the reduced suite that slow backends may choose, on the CPU device.
func TestSmallOptions(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("child process")
	}
	devicetest.RunOpts(t, fallback.New(), devicetest.Options{Small: true})
}
