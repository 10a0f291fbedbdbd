// Package shard splits a cohort's rows across the tasks of a job array and keeps each part's
// provenance beside it, so that a merge can prove every part is present exactly once and that
// all parts come from one model, method, seed and cohort, and a re-submitted array can skip
// the parts already done.
package shard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"
)

// Spec is one shard: rows I, I+N, I+2N, … of a cohort.
type Spec struct{ I, N int }

// Parse reads --shard: "" (the whole cohort), "i/n", "slurm" (this task of a Slurm job
// array, from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT) or "slurm/N" (the task from
// SLURM_ARRAY_TASK_ID, N shards whatever the array's size); getenv is os.Getenv.
func Parse(s string, getenv func(string) string) (Spec, error) {
	if n, ok := strings.CutPrefix(s, "slurm/"); ok {
		// slurm/N: the task number from Slurm, the shard count fixed, so that re-submitting
		// one task (sbatch --array=2) still makes shard 2 of N.
		id := getenv("SLURM_ARRAY_TASK_ID")
		i, err1 := strconv.Atoi(id)
		k, err2 := strconv.Atoi(n)
		if err2 != nil || k < 1 {
			return Spec{}, fmt.Errorf("--shard %q: want slurm/N with N ≥ 1 shards", s)
		}
		if id == "" || err1 != nil || i < 0 || i >= k {
			return Spec{}, fmt.Errorf("--shard %s: SLURM_ARRAY_TASK_ID=%q: want a task number 0…%d; run inside a Slurm job array (sbatch --array=0-%d)", s, id, k-1, k-1)
		}
		return Spec{i, k}, nil
	}
	switch s {
	case "":
		return Spec{0, 1}, nil
	case "slurm":
		id, cnt := getenv("SLURM_ARRAY_TASK_ID"), getenv("SLURM_ARRAY_TASK_COUNT")
		if id == "" || cnt == "" {
			return Spec{}, fmt.Errorf("--shard slurm: SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT are not set: run inside a Slurm job array (sbatch --array=0-N), or give --shard i/n")
		}
		i, err1 := strconv.Atoi(id)
		n, err2 := strconv.Atoi(cnt)
		if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
			return Spec{}, fmt.Errorf("--shard slurm: SLURM_ARRAY_TASK_ID=%q, SLURM_ARRAY_TASK_COUNT=%q: want 0 ≤ id < count; submit the array as --array=0-(N-1)", id, cnt)
		}
		return Spec{i, n}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Spec{}, fmt.Errorf("--shard %q: want i/n with 0 ≤ i < n (e.g. 0/4) or slurm", s)
	}
	return Spec{i, n}, nil
}

// Rows returns the cohort rows of this shard among total.
func (s Spec) Rows(total int) []int {
	var r []int
	for i := s.I; i < total; i += s.N {
		r = append(r, i)
	}
	return r
}

func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// Path puts the shard number into an output path: "{i}" is replaced by I. Without "{i}" the
// path is kept for an explicit i/n shard, but refused for one read from Slurm, where every
// task of the array is given the same arguments and would overwrite the others' output.
func (s Spec) Path(p string, fromSlurm bool) (string, error) {
	if strings.Contains(p, "{i}") {
		return strings.ReplaceAll(p, "{i}", strconv.Itoa(s.I)), nil
	}
	if fromSlurm {
		return "", fmt.Errorf("--out %s: with --shard slurm every array task gets the same --out; put {i} in it for the task's number, e.g. --out parts/scores_{i}.csv", p)
	}
	return p, nil
}

// Provenance is what a shard's output was made from; it is written beside the output.
type Provenance struct {
	Kind    string `json:"kind"`    // "scores" or "latents"
	Shard   int    `json:"shard"`   // I
	Shards  int    `json:"shards"`  // N
	Total   int    `json:"total"`   // rows in the whole cohort
	Model   string `json:"model"`   // sha256 of the model file
	Method  string `json:"method"`  // score method, or "extract"
	Seed    int    `json:"seed"`    // random seed of the draws
	Options string `json:"options"` // every other setting that changes the output
	Cohort  string `json:"cohort"`  // sha256 of the cohort's identity (ids, files)
	Output  string `json:"output"`  // sha256 of the output files, to detect a partial one
}

// SidecarPath is where the provenance of an output is kept: beside a file (out.shard.json),
// inside a folder (out/shard.json).
func SidecarPath(out string, folder bool) string {
	if folder {
		return filepath.Join(out, "shard.json")
	}
	return out + ".shard.json"
}

// Write stores p at path atomically. Written after the output itself, its presence marks
// the shard complete.
func Write(path string, p Provenance) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(p)
	})
}

// Read loads a sidecar.
func Read(path string) (Provenance, error) {
	var p Provenance
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: not a shard provenance file: %v", path, err)
	}
	return p, nil
}

// HashFiles is the sha256 of the files' contents, in order.
func HashFiles(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashStrings is the sha256 of the lines.
func HashStrings(lines ...string) string {
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Complete reports whether the sidecar at path says its output was made from want (all
// fields but Output) and the output files still hash to what it recorded.
func Complete(path string, want Provenance, outputs ...string) bool {
	got, err := Read(path)
	if err != nil {
		return false
	}
	out := got.Output
	got.Output = ""
	if want.Total == 0 { // not known before the input is read: the cohort hash covers it
		got.Total = 0
	}
	want.Output = ""
	if got != want {
		return false
	}
	h, err := HashFiles(outputs...)
	return err == nil && h == out
}

// Part is one shard's output as a merge is given it.
type Part struct {
	Name string // what the user gave, for messages
	P    Provenance
}

// Check proves parts are one whole run: the same kind, shard count, cohort, model, method,
// seed and options throughout, every shard 0…N-1 present exactly once. Its error names
// the foreign, duplicate and missing shards.
func Check(parts []Part) error {
	if len(parts) == 0 {
		return fmt.Errorf("no shards to merge")
	}
	ref := parts[0]
	var problems []string
	for _, q := range parts[1:] {
		for _, f := range []struct{ name, a, b string }{
			{"kind", ref.P.Kind, q.P.Kind},
			{"shard count", strconv.Itoa(ref.P.Shards), strconv.Itoa(q.P.Shards)},
			{"model", short(ref.P.Model), short(q.P.Model)},
			{"method", ref.P.Method, q.P.Method},
			{"seed", strconv.Itoa(ref.P.Seed), strconv.Itoa(q.P.Seed)},
			{"options", ref.P.Options, q.P.Options},
			{"cohort", short(ref.P.Cohort), short(q.P.Cohort)},
		} {
			if f.a != f.b {
				problems = append(problems, fmt.Sprintf("%s is foreign: its %s is %s, but %s's is %s", q.Name, f.name, f.b, ref.Name, f.a))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("shards from different runs:\n  %s", strings.Join(problems, "\n  "))
	}
	seen := make([][]string, ref.P.Shards)
	for _, q := range parts {
		if q.P.Shard < 0 || q.P.Shard >= ref.P.Shards {
			return fmt.Errorf("%s: shard %d of %d is out of range", q.Name, q.P.Shard, q.P.Shards)
		}
		seen[q.P.Shard] = append(seen[q.P.Shard], q.Name)
	}
	var missing []string
	for i, names := range seen {
		switch {
		case len(names) == 0:
			missing = append(missing, fmt.Sprintf("%d/%d", i, ref.P.Shards))
		case len(names) > 1:
			problems = append(problems, fmt.Sprintf("shard %d/%d given %d times: %s", i, ref.P.Shards, len(names), strings.Join(names, ", ")))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("missing shard(s) %s of %d: run those array tasks again (a re-submitted array skips the complete ones)", strings.Join(missing, ", "), ref.P.Shards))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// Sort orders parts by shard number.
func Sort(parts []Part) {
	slices.SortFunc(parts, func(a, b Part) int { return a.P.Shard - b.P.Shard })
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
