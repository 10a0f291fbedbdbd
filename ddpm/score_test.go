package ddpm

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/internal/pyfix"
	"github.com/latentad/latentad/internal/rng"
	"github.com/latentad/latentad/nn"
)

// TestSeedCheckpointScores: DDPM scores from a seed-format .pth (the seed's default
// architecture, with noise_schedule) agree with PyTorch's K=200 means within sampling error.
func TestSeedCheckpointScores(t *testing.T) {
	dir := pyfix.Run(t, "flow/testdata/gen_scores.py")
	var fx struct {
		Z          []float32   `json:"z"`
		Shape      []int       `json:"shape"`
		DDPM       [][]float64 `json:"ddpm_draws"`
		DDPMSmallT [][]float64 `json:"ddpm_small_draws"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Load(filepath.Join(dir, "ddpm.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Schedule == nil || ck.Schedule.Timesteps != 1000 || ck.Schedule.Type != "cosine" {
		t.Fatalf("noise_schedule from the .pth: %+v", ck.Schedule)
	}
	sch, err := NewSchedule(ck.Schedule.Type, ck.Schedule.Timesteps)
	if err != nil {
		t.Fatal(err)
	}
	dev := fallback.New()
	m, err := nn.NewVelocity(dev, nn.DefaultVelocityConfig(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Params().LoadStateDict(ck.Model); err != nil {
		t.Fatal(err)
	}
	z := compute.FromHost(dev, fx.Z, fx.Shape...)
	s := NewScorer(dev, m, sch)
	for _, c := range []struct {
		name  string
		tmax  int
		draws [][]float64
	}{{"ddpm", 0, fx.DDPM}, {"ddpm_small_t", 100, fx.DDPMSmallT}} {
		K := len(c.draws)
		got, err := s.Score(z, []int{0, 1, 2}, Options{Samples: K, TMax: c.tmax, Seed: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for b := range got {
			var mean, sq float64
			for _, d := range c.draws {
				mean += d[b] / float64(K)
				sq += d[b] * d[b] / float64(K)
			}
			se := math.Sqrt((sq - mean*mean) / float64(K))
			// Two independent K-draw means: difference sd √2·se; 4.5 sd ≈ 1 in 150000.
			if d := math.Abs(got[b] - mean); d > 4.5*math.Sqrt2*se {
				t.Errorf("%s sample %d: %.6g, PyTorch %.6g ± %.2g", c.name, b, got[b], mean, se)
			}
			t.Logf("%s sample %d: %.6g, PyTorch %.6g ± %.2g", c.name, b, got[b], mean, se)
		}
	}
}

// TestMapMeanIsScore: the DDPM map's mean equals the score (issue 8).
func TestMapMeanIsScore(t *testing.T) {
	dev := fallback.New()
	m, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 4, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	sch, _ := NewSchedule("linear", 50)
	h := make([]float32, 2*4*3*4*5)
	rng.Normal(rng.New(4), h)
	z := compute.FromHost(dev, h, 2, 4, 3, 4, 5)
	maps := dev.Alloc(2, 1, 3, 4, 5)
	s := NewScorer(dev, m, sch)
	for _, tmax := range []int{0, 10} {
		got, err := s.Score(z, []int{0, 1}, Options{Samples: 3, TMax: tmax}, maps)
		if err != nil {
			t.Fatal(err)
		}
		mh := compute.ToHost(maps)
		for b, sc := range got {
			var mean float64
			for _, v := range mh[b*60 : (b+1)*60] {
				mean += float64(v) / 60
			}
			if math.Abs(mean-sc) > 1e-6*sc {
				t.Errorf("t_max %d sample %d: map mean %.9g, score %.9g", tmax, b, mean, sc)
			}
		}
	}
	if _, err := s.Score(z, []int{0, 1}, Options{Samples: -1}, nil); err == nil {
		t.Error("negative n_samples: no error")
	}
}
