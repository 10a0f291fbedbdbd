package ddpm

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// TestScheduleMatchesPyTorch compares with torch's float32 schedules (testdata/gen_fixtures.py).
// The issue asks for ≤ 1e-6; the computation repeats PyTorch's float32 operations, so the
// only difference left is cos rounding (≤ 1 ulp) carried through the cumulative product.
func TestScheduleMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/schedules.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Betas    []float64 `json:"betas"`
		AlphaBar []float64 `json:"alphas_cumprod"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"linear", "cosine"} {
		for _, T := range []int{1000, 7} {
			key := fmt.Sprintf("%s_%d", kind, T)
			w, ok := want[key]
			if !ok {
				t.Fatalf("fixture lacks %s", key)
			}
			s, err := NewSchedule(kind, T)
			if err != nil {
				t.Fatal(err)
			}
			var maxB, maxA float64
			for i := 0; i < T; i++ {
				maxB = math.Max(maxB, math.Abs(float64(s.Betas[i])-w.Betas[i]))
				maxA = math.Max(maxA, math.Abs(float64(s.AlphaBar[i])-w.AlphaBar[i]))
			}
			if maxB > 1e-6 || maxA > 1e-6 {
				t.Errorf("%s: max |Δβ| = %.3g, max |Δᾱ| = %.3g, want ≤ 1e-6", key, maxB, maxA)
			}
			t.Logf("%s: max |Δβ| = %.3g, max |Δᾱ| = %.3g", key, maxB, maxA)
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		kind string
		T    int
	}{{"quadratic", 10}, {"cosine", 0}, {"linear", -3}} {
		if _, err := NewSchedule(c.kind, c.T); err == nil {
			t.Errorf("NewSchedule(%q, %d): no error", c.kind, c.T)
		}
	}
}
