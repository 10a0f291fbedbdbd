package shard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	slurm := map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
	for _, tc := range []struct {
		in   string
		env  map[string]string
		want Spec
		err  string
	}{
		{"", nil, Spec{0, 1}, ""},
		{"1/3", nil, Spec{1, 3}, ""},
		{"3/3", nil, Spec{}, "0 ≤ i < n"},
		{"a/3", nil, Spec{}, "i/n"},
		{"slurm", slurm, Spec{2, 4}, ""},
		{"slurm", nil, Spec{}, "SLURM_ARRAY_TASK_ID"},
		{"slurm/4", map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1"}, Spec{2, 4}, ""},
		{"slurm/4", map[string]string{"SLURM_ARRAY_TASK_ID": "4"}, Spec{}, "0…3"},
		{"slurm/0", slurm, Spec{}, "N ≥ 1"},
		{"slurm", map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4"}, Spec{}, "0 ≤ id < count"},
	} {
		got, err := Parse(tc.in, env(tc.env))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): %v, want an error saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestRowsCoverOnce(t *testing.T) {
	for _, n := range []int{1, 3, 4, 9} {
		seen := make([]int, 7)
		for i := 0; i < n; i++ {
			for _, r := range (Spec{i, n}).Rows(7) {
				seen[r]++
			}
		}
		for r, k := range seen {
			if k != 1 {
				t.Errorf("%d shards: row %d in %d shards", n, r, k)
			}
		}
	}
}

func TestCompleteDetectsChanges(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.csv")
	p := Provenance{Kind: "scores", Shard: 1, Shards: 2, Model: "m", Method: "mse_multi_t", Seed: 42, Cohort: "c"}
	if Complete(SidecarPath(out, false), p, out) {
		t.Fatal("complete before anything was written")
	}
	writeFile(t, out, "id,label,score,index\n")
	h, _ := HashFiles(out)
	p.Output = h
	if err := Write(SidecarPath(out, false), p); err != nil {
		t.Fatal(err)
	}
	other := p
	other.Seed = 7
	for _, tc := range []struct {
		name string
		want Provenance
		ok   bool
	}{{"same", p, true}, {"other seed", other, false}} {
		if got := Complete(SidecarPath(out, false), tc.want, out); got != tc.ok {
			t.Errorf("%s: Complete %v, want %v", tc.name, got, tc.ok)
		}
	}
	writeFile(t, out, "id,label,score,index\nx") // changed after the sidecar was written
	if Complete(SidecarPath(out, false), p, out) {
		t.Error("a changed output counts as complete")
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
