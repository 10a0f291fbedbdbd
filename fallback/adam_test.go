package fallback

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/compute"
)

// TestAdamMatchesTorch replays three torch.optim.Adam steps recorded by
// testdata/gen_fixtures.py and requires the same float32 bits for p, m and v: the op
// follows PyTorch's order of operations and roundings, and 1-β as Python forms it.
func TestAdamMatchesTorch(t *testing.T) {
	const n, steps, lr, b1, b2 = 500, 3, 1e-3, 0.9, 0.999
	for _, tc := range []struct {
		file string
		wd   float32
	}{{"adam_wd0.f32", 0}, {"adam_wd001.f32", 0.01}} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatalf("reading the fixture (regenerate with /usr/bin/python3 fallback/testdata/gen_fixtures.py): %v", err)
			}
			if len(raw) != 4*n*(1+4*steps) {
				t.Fatalf("%s holds %d bytes, want %d", tc.file, len(raw), 4*n*(1+4*steps))
			}
			vals := make([]float32, len(raw)/4)
			for i := range vals {
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			dev := New()
			p := compute.FromHost(dev, vals[:n], n)
			m, v, g := dev.Alloc(n), dev.Alloc(n), dev.Alloc(n)
			for step := 1; step <= steps; step++ {
				rec := vals[n+(step-1)*4*n:]
				dev.Upload(g, rec[:n])
				dev.Adam(p, g, m, v, compute.AdamArgs{
					Beta1: b1, Beta2: b2, Eps: 1e-8, WeightDecay: tc.wd,
					StepSize: float32(lr / (1 - math.Pow(b1, float64(step)))),
					BC2Sqrt:  float32(math.Sqrt(1 - math.Pow(b2, float64(step)))),
				})
				for k, got := range [][]float32{compute.ToHost(p), compute.ToHost(m), compute.ToHost(v)} {
					want := rec[(k+1)*n : (k+2)*n]
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("step %d %s[%d] = %v, torch has %v", step, []string{"p", "m", "v"}[k], i, got[i], want[i])
						}
					}
				}
			}
		})
	}
}
