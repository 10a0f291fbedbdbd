package train

import (
	"runtime"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/ddpm"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/internal/rng"
	"github.com/latentad/latentad/nn"
)

// countAllocs is a device that counts its Alloc calls.
type countAllocs struct {
	compute.Device
	n int
}

func (c *countAllocs) Alloc(shape ...int) *compute.Tensor {
	c.n++
	return c.Device.Alloc(shape...)
}

// TestStepsAllocateNothingOnceWarm: once the first steps have sized every buffer, a
// training step (batch upload, objective, Adam) allocates no device buffer and less Go
// memory than its batch (no batch-sized host staging; what there is comes mostly from the
// convolutions' bookkeeping), so a long run's memory stays flat.
func TestStepsAllocateNothingOnceWarm(t *testing.T) {
	sch, err := ddpm.NewSchedule("cosine", 100)
	if err != nil {
		t.Fatal(err)
	}
	shape := []int{2, 8, 16, 32, 32}
	host := make([]float32, compute.Numel(shape))
	rng.Normal(rng.New(3), host)
	for _, kind := range []string{"fm", "ddpm"} {
		t.Run(kind, func(t *testing.T) {
			dev := &countAllocs{Device: fallback.New()}
			m, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 8, BaseChannels: 16, TimeDim: 16, NumResBlocks: 2}, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			var obj Objective
			if kind == "fm" {
				tr := flow.NewTrainer(dev, m)
				defer tr.Release()
				obj = tr
			} else {
				tr := ddpm.NewTrainer(dev, m, sch)
				defer tr.Release()
				obj = tr
			}
			adam := nn.NewAdam(dev, m.Params(), 1e-3)
			defer adam.Release()
			z := dev.Alloc(shape...)
			defer dev.Release(z)
			step := func(i int) {
				dev.Upload(z, host)
				obj.Step(z, rng.New(1, uint64(i)))
				adam.Step()
			}
			step(0)
			step(1)
			allocs := dev.n
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const steps = 4
			for i := range steps {
				step(2 + i)
			}
			runtime.ReadMemStats(&after)
			if dev.n != allocs {
				t.Errorf("%d device allocations in %d warm steps", dev.n-allocs, steps)
			}
			per := (after.TotalAlloc - before.TotalAlloc) / steps
			t.Logf("%d bytes of Go garbage per step; a batch is %d", per, 4*len(host))
			if per > uint64(4*len(host)) {
				t.Errorf("a warm step allocates %d bytes on the Go heap; its batch is %d", per, 4*len(host))
			}
		})
	}
}
