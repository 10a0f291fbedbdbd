package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/internal/rng"
	"github.com/latentad/latentad/nn"
)

func tinySetup(t *testing.T) (compute.Device, *nn.Velocity, compute.Array) {
	t.Helper()
	dev := fallback.New()
	m, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 3, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}, 7)
	if err != nil {
		t.Fatal(err)
	}
	data := compute.NewArray(7, 3, 2, 3, 2) // 7 samples: the last batch of 3 is partial
	rng.Normal(rng.New(11), data.Data)
	return dev, m, data
}

func cfg(dir string, epochs int) Config {
	return Config{Epochs: epochs, BatchSize: 3, LR: 1e-3, Seed: 5, SaveEvery: 2, OutDir: dir, Kind: "fm",
		Config: map[string]int{"in_channels": 3, "base_channels": 8, "time_dim": 8, "num_res_blocks": 1}}
}

// cancelAfter wraps an objective and cancels the run's context after n steps.
type cancelAfter struct {
	Objective
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Step(z *compute.Tensor, r *rand.Rand) float64 {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return c.Objective.Step(z, r)
}

func weights(t *testing.T, path string) map[string]compute.Array {
	t.Helper()
	c, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c.Model
}

func sameWeights(t *testing.T, a, b map[string]compute.Array) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d tensors vs %d", len(a), len(b))
	}
	for k, x := range a {
		y := b[k]
		for i := range x.Data {
			if x.Data[i] != y.Data[i] {
				t.Fatalf("%s[%d]: %v vs %v: the resumed run differs", k, i, x.Data[i], y.Data[i])
			}
		}
	}
}

// TestResumeEqualsUninterrupted: a run interrupted mid-epoch (as Ctrl-C does) and resumed
// from its last checkpoint ends bit-for-bit where the uninterrupted run ends.
func TestResumeEqualsUninterrupted(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	dev, m, data := tinySetup(t)
	resA, err := Run(context.Background(), dev, m.Params(), flow.NewTrainer(dev, m), data, cfg(dirA, 4))
	if err != nil {
		t.Fatal(err)
	}

	dev, m, data = tinySetup(t)
	ctx, cancel := context.WithCancel(context.Background())
	obj := &cancelAfter{Objective: flow.NewTrainer(dev, m), n: 5, cancel: cancel} // epoch 2, batch 2 of 3
	res, err := Run(ctx, dev, m.Params(), obj, data, cfg(dirB, 4))
	if err != ErrInterrupted {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	if res.Last != filepath.Join(dirB, LastName) {
		t.Fatalf("interrupted run's checkpoint: %q", res.Last)
	}

	dev, m, data = tinySetup(t) // a fresh process: different initial weights are overwritten
	c := cfg(dirB, 4)
	c.Resume = dirB
	resB, err := Run(context.Background(), dev, m.Params(), flow.NewTrainer(dev, m), data, c)
	if err != nil {
		t.Fatal(err)
	}
	sameWeights(t, weights(t, filepath.Join(dirA, FinalName)), weights(t, filepath.Join(dirB, FinalName)))
	for i := range resA.Losses {
		if resA.Losses[i] != resB.Losses[i] {
			t.Errorf("epoch %d loss: %v uninterrupted, %v resumed", i+1, resA.Losses[i], resB.Losses[i])
		}
	}
	for _, name := range []string{EpochName(2), EpochName(4), BestName, FinalName, "loss_history.csv"} {
		if _, err := os.Stat(filepath.Join(dirB, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	ck, err := checkpoint.Load(filepath.Join(dirB, FinalName))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Epoch != 4 || ck.Kind != "fm" || ck.Optim == nil || ck.Optim.Step != 12 {
		t.Errorf("final checkpoint: epoch %d kind %q optim %+v", ck.Epoch, ck.Kind, ck.Optim != nil)
	}
}

// nanAt returns NaN at step n, as a diverging model would.
type nanAt struct {
	Objective
	n int
}

func (o *nanAt) Step(z *compute.Tensor, r *rand.Rand) float64 {
	l := o.Objective.Step(z, r)
	if o.n--; o.n == 0 {
		return math.NaN()
	}
	return l
}

// TestNaNStopsAndKeepsLastGood: a NaN loss stops the run with an error naming the last good
// checkpoint, which still holds the epoch before.
func TestNaNStopsAndKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	dev, m, data := tinySetup(t)
	_, err := Run(context.Background(), dev, m.Params(), &nanAt{Objective: flow.NewTrainer(dev, m), n: 8}, data, cfg(dir, 5))
	if err == nil || !strings.Contains(err.Error(), "NaN") || !strings.Contains(err.Error(), LastName) {
		t.Fatalf("want a NaN error naming %s, got %v", LastName, err)
	}
	ck, err := checkpoint.Load(filepath.Join(dir, LastName))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Epoch != 2 {
		t.Errorf("last good checkpoint is from epoch %d, want 2", ck.Epoch)
	}
	for _, v := range ck.Model["input_conv.weight"].Data {
		if math.IsNaN(float64(v)) {
			t.Fatal("last checkpoint holds NaN weights")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FinalName)); err == nil {
		t.Error("a diverged run wrote the final model")
	}
}

func TestConfigErrors(t *testing.T) {
	dev, m, data := tinySetup(t)
	for _, c := range []func(*Config){
		func(c *Config) { c.BatchSize = 0 },
		func(c *Config) { c.Epochs = 0 },
		func(c *Config) { c.LR = -1 },
		func(c *Config) { c.Resume = filepath.Join(t.TempDir(), "missing.safetensors") },
	} {
		cf := cfg(t.TempDir(), 1)
		c(&cf)
		if _, err := Run(context.Background(), dev, m.Params(), flow.NewTrainer(dev, m), data, cf); err == nil {
			t.Errorf("config %+v: no error", cf)
		}
	}
}
