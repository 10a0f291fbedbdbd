package flow

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

// linear is a velocity field v(z, t) = a·z with a known exact flow, to test the solvers.
type linear struct {
	dev compute.Device
	a   float32
	out *compute.Tensor
}

func (l *linear) Forward(z *compute.Tensor, t []float32) *compute.Tensor {
	if l.out == nil || l.out.Len() != z.Len() {
		l.out = l.dev.Alloc(z.Shape()...)
	}
	l.dev.AXPBY(l.a, z, 0, z, l.out)
	return l.out
}
func (l *linear) Backward(*compute.Tensor) {}

func randLatents(dev compute.Device, seed uint64, shape ...int) (*compute.Tensor, []float32) {
	h := make([]float32, compute.Numel(shape))
	rng.Normal(rng.New(seed), h)
	return compute.FromHost(dev, h, shape...), h
}

// TestRoundTripSolvers checks each solver against the exact per-step growth factors of the
// linear field v = a·z: Euler multiplies by (1+a·dt) forward and (1-a·dt) back, Heun by its
// second-order polynomial, RK4 by the fourth-order Taylor polynomial of e^{±a·dt}.
func TestRoundTripSolvers(t *testing.T) {
	dev := fallback.New()
	z, h := randLatents(dev, 1, 2, 3, 2, 2, 2)
	const a, n = 0.8, 10
	dt := 1.0 / n
	var ms [2]float64
	for i, v := range h {
		ms[i/24] += float64(v) * float64(v) / 24
	}
	taylor := func(x float64, order int) float64 {
		s, term := 1.0, 1.0
		for k := 1; k <= order; k++ {
			term *= x / float64(k)
			s += term
		}
		return s
	}
	for _, c := range []struct {
		solver string
		order  int
	}{{"euler", 1}, {"heun", 2}, {"rk4", 4}} {
		g := math.Pow(taylor(a*dt, c.order)*taylor(-a*dt, c.order), n)
		s := NewScorer(dev, &linear{dev: dev, a: a})
		got := s.RoundTrip(z, Options{Steps: n, Solver: c.solver}, nil)
		for b := range got {
			want := (1 - g) * (1 - g) * ms[b]
			// float32 arithmetic over 2n steps: the residual 1-g is ~1e-2 (Euler) down to
			// ~1e-8 (RK4, where float32 round-off of ~1e-7 per step dominates).
			tol := 1e-4*want + 1e-11
			if math.Abs(got[b]-want) > tol {
				t.Errorf("%s sample %d: score %.6g, want %.6g", c.solver, b, got[b], want)
			}
		}
		s.Release()
	}
}

// TestMapsAverageToScores: every method's map has the score as its mean (issue 8).
func TestMapsAverageToScores(t *testing.T) {
	dev := fallback.New()
	cfg := nn.VelocityConfig{InChannels: 4, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}
	m, err := nn.NewVelocity(dev, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	z, _ := randLatents(dev, 2, 2, 4, 3, 4, 5)
	maps := dev.Alloc(2, 1, 3, 4, 5)
	s := NewScorer(dev, m)
	o := Options{Samples: 4, Steps: 3, Seed: 9}
	vi, err := s.VelocityInconsistency(z, []int{0, 1}, o, maps)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, scores []float64) {
		mh := compute.ToHost(maps)
		for b, sc := range scores {
			var mean float64
			for _, v := range mh[b*60 : (b+1)*60] {
				mean += float64(v) / 60
			}
			if math.Abs(mean-sc) > 1e-6*math.Abs(sc) {
				t.Errorf("%s sample %d: map mean %.9g, score %.9g", name, b, mean, sc)
			}
		}
	}
	check("velocity_inconsistency", vi)
	check("mse_multi_t", s.MSEMultiT(z, []int{0, 1}, o, maps))
	check("round_trip", s.RoundTrip(z, o, maps))
	if _, err := s.VelocityInconsistency(z, []int{0, 1}, Options{Samples: 1}, nil); err == nil {
		t.Error("velocity_inconsistency with K=1: no error")
	}
}

// TestScoresIndependentOfBatching: a sample's score depends on its cohort index and the
// seed only, not on which batch or shard it is scored in.
func TestScoresIndependentOfBatching(t *testing.T) {
	dev := fallback.New()
	m, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 4, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	z, h := randLatents(dev, 2, 3, 4, 2, 2, 2)
	s := NewScorer(dev, m)
	o := Options{Samples: 3, Seed: 5}
	all := s.MSEMultiT(z, []int{10, 11, 12}, o, nil)
	for i := 0; i < 3; i++ {
		one := compute.FromHost(dev, h[i*32:(i+1)*32], 1, 4, 2, 2, 2)
		got := s.MSEMultiT(one, []int{10 + i}, o, nil)
		if math.Abs(got[0]-all[i]) > 1e-6*all[i] {
			t.Errorf("sample %d: alone %.9g, in a batch %.9g", i, got[0], all[i])
		}
	}
}

type scoreFixture struct {
	Z           []float32   `json:"z"`
	Shape       []int       `json:"shape"`
	RoundTrip50 []float64   `json:"round_trip_euler_50"`
	RoundTrip7  []float64   `json:"round_trip_euler_7"`
	MSEDraws    [][]float64 `json:"mse_multi_t_draws"`
}

// seedModel loads the seed-format .pth that testdata/gen_scores.py writes with PyTorch.
func seedModel(t *testing.T, dir string) (*nn.Velocity, *compute.Tensor, scoreFixture) {
	t.Helper()
	var fx scoreFixture
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Load(filepath.Join(dir, "fm.pth"))
	if err != nil {
		t.Fatal(err)
	}
	dev := fallback.New()
	cfg := nn.VelocityConfigFromMap(ck.Config)
	if cfg != nn.DefaultVelocityConfig() {
		t.Fatalf("config from the .pth: %+v, want the seed's default", cfg)
	}
	m, err := nn.NewVelocity(dev, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Params().LoadStateDict(ck.Model); err != nil {
		t.Fatal(err)
	}
	return m, compute.FromHost(dev, fx.Z, fx.Shape...), fx
}

// TestSeedCheckpointScores loads a seed-format .pth of the default architecture and compares
// with PyTorch: round_trip (deterministic) within 1e-3 relative — the bound; 100
// model evaluations in float32 on both sides, differently ordered sums, and the score is a
// small difference of large states — and mse_multi_t with K=200 within sampling error.
func TestSeedCheckpointScores(t *testing.T) {
	dir := pyfix.Run(t, "flow/testdata/gen_scores.py")
	m, z, fx := seedModel(t, dir)
	dev := m.Device()
	s := NewScorer(dev, m)
	for _, c := range []struct {
		steps int
		want  []float64
	}{{50, fx.RoundTrip50}, {7, fx.RoundTrip7}} {
		got := s.RoundTrip(z, Options{Steps: c.steps}, nil)
		for b := range got {
			if rel := math.Abs(got[b]-c.want[b]) / c.want[b]; rel > 1e-3 {
				t.Errorf("round_trip %d steps, sample %d: %.7g, PyTorch %.7g (rel %.2g)", c.steps, b, got[b], c.want[b], rel)
			}
		}
	}
	K := len(fx.MSEDraws)
	got := s.MSEMultiT(z, []int{0, 1, 2}, Options{Samples: K, Seed: 7}, nil)
	for b := range got {
		var mean, sq float64
		for _, d := range fx.MSEDraws {
			mean += d[b] / float64(K)
			sq += d[b] * d[b] / float64(K)
		}
		se := math.Sqrt((sq - mean*mean) / float64(K))
		// Both means are K-draw averages of the same distribution: their difference has
		// standard deviation √2·se; 4.5 of those is a 1-in-150000 false alarm.
		if d := math.Abs(got[b] - mean); d > 4.5*math.Sqrt2*se {
			t.Errorf("mse_multi_t sample %d: %.6g, PyTorch %.6g ± %.2g", b, got[b], mean, se)
		}
	}
}
