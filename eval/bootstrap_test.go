package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func goldenByName(t *testing.T, name string) goldenSet {
	t.Helper()
	for _, g := range loadGolden(t).Sets {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("fixture set %q missing from testdata/golden.json", name)
	return goldenSet{}
}

// The weighted one-pass bootstrap must give what materialising each resample and calling
// ROCAUC/AveragePrecision (golden-tested against sklearn) gives, skips included.
func TestBootstrapMatchesNaiveResampling(t *testing.T) {
	for _, name := range []string{"ties_rounded", "small_ties_6v7", "single_anomaly"} {
		g := goldenByName(t, name)
		const n, seed = 300, 9
		got, err := BootstrapCI(g.Scores, g.Labels, n, 0.95, seed)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rng := rand.New(rand.NewPCG(seed, 0x6c6174656e746164))
		var aucs, aps []float64
		for range n {
			s := make([]float64, len(g.Scores))
			l := make([]int, len(g.Scores))
			for k := range s {
				i := rng.IntN(len(g.Scores))
				s[k], l[k] = g.Scores[i], g.Labels[i]
			}
			auc, err := ROCAUC(s, l)
			if err != nil {
				continue // one class only: skipped, as BootstrapCI documents
			}
			ap, _ := AveragePrecision(s, l)
			aucs = append(aucs, auc)
			aps = append(aps, ap)
		}
		if got.Used != len(aucs) {
			t.Errorf("%s: %d resamples used; naive loop kept %d", name, got.Used, len(aucs))
		}
		want := [2]Interval{{Quantile(aucs, 0.025), Quantile(aucs, 0.975)}, {Quantile(aps, 0.025), Quantile(aps, 0.975)}}
		for k, iv := range [2]Interval{got.ROCAUC, got.AP} {
			// Same resamples, different summation order: agreement to round-off.
			if !closeAbs(iv[0], want[k][0], 1e-12) || !closeAbs(iv[1], want[k][1], 1e-12) {
				t.Errorf("%s metric %d: CI %v; naive %v", name, k, iv, want[k])
			}
		}
	}
}

func TestBootstrapDeterministicAndContainsEstimate(t *testing.T) {
	for _, name := range []string{"ties_rounded", "large_ties", "continuous_50v70", "small_exact_8v8", "inverted"} {
		g := goldenByName(t, name)
		a, err := BootstrapCI(g.Scores, g.Labels, 500, 0.95, 42)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := BootstrapCI(g.Scores, g.Labels, 500, 0.95, 42)
		c, _ := BootstrapCI(g.Scores, g.Labels, 500, 0.95, 43)
		if a != b {
			t.Errorf("%s: seed 42 twice gave %+v and %+v", name, a, b)
		}
		if a == c {
			t.Errorf("%s: seeds 42 and 43 gave the same intervals %+v", name, a)
		}
		if !(a.ROCAUC[0] <= g.ROCAUC && g.ROCAUC <= a.ROCAUC[1]) || a.ROCAUC[0] >= a.ROCAUC[1] {
			t.Errorf("%s: ROC-AUC CI %v does not bracket the estimate %v", name, a.ROCAUC, g.ROCAUC)
		}
		if !(a.AP[0] <= g.AveragePrecision && g.AveragePrecision <= a.AP[1]) || a.AP[0] >= a.AP[1] {
			t.Errorf("%s: AP CI %v does not bracket the estimate %v", name, a.AP, g.AveragePrecision)
		}
	}
}

// With 1 anomaly among 4 samples, a resample has no anomaly with probability (3/4)^4; those
// are skipped, not redrawn.
func TestBootstrapSkipsOneClassResamples(t *testing.T) {
	const n = 4000
	b, err := BootstrapCI([]float64{3, 1, 2, 0.5}, []int{1, 0, 0, 0}, n, 0.95, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := 1 - math.Pow(0.75, 4)
	mean, sd := n*p, math.Sqrt(n*p*(1-p))
	if math.Abs(float64(b.Used)-mean) > 5*sd {
		t.Errorf("%d of %d resamples used; expected about %.0f ± %.0f", b.Used, n, mean, sd)
	}
	if _, err := BootstrapCI([]float64{1, 2}, []int{1, 0}, 0, 0.95, 1); err != nil {
		t.Errorf("0 resamples: %v", err)
	}
}

// Coverage sanity check: two unit-variance normal classes a distance 1 apart have ROC-AUC
// Φ(1/√2). Over 150 simulated studies of 50 + 50 samples the 95% percentile interval should
// hold it about 95% of the time (the percentile bootstrap runs a little under at this size);
// [0.85, 0.99] is about ±3.5 binomial standard deviations around 0.93.
func TestBootstrapCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("coverage simulation skipped in -short mode")
	}
	trueAUC := 0.5 * math.Erfc(-1/math.Sqrt2/math.Sqrt2)
	rng := rand.New(rand.NewPCG(2026, 11))
	const studies, per = 150, 50
	hit := 0
	scores := make([]float64, 2*per)
	labels := make([]int, 2*per)
	for s := range studies {
		for i := range scores {
			labels[i] = i % 2
			scores[i] = rng.NormFloat64() + float64(labels[i])
		}
		b, err := BootstrapCI(scores, labels, 400, 0.95, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		if b.ROCAUC[0] <= trueAUC && trueAUC <= b.ROCAUC[1] {
			hit++
		}
	}
	t.Logf("coverage %d/%d", hit, studies)
	if cov := float64(hit) / studies; cov < 0.85 || cov > 0.99 {
		t.Errorf("coverage %.3f of the true AUC %.4f; expected about 0.93–0.95", cov, trueAUC)
	}
}

func TestQuantileEdges(t *testing.T) {
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of no data is not NaN")
	}
}
