package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/shard"
)

// shardOf reads --shard (i/n or slurm); slurm says the spec came from the job array.
func shardOf(c *ucli.Context) (sp shard.Spec, slurm bool, err error) {
	s := c.String("shard")
	sp, err = shard.Parse(s, os.Getenv)
	if err != nil {
		return sp, false, usageError("%v", err)
	}
	return sp, s == "slurm" || strings.HasPrefix(s, "slurm/"), nil
}

// sharded says whether outputs carry provenance and cohort indices.
func sharded(sp shard.Spec, slurm bool) bool { return slurm || sp.N > 1 }

// latentsKey hashes a latents input (.npy, or a folder's latents.npy and index.csv).
func latentsKey(p string) (string, error) {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		files := []string{filepath.Join(p, "latents.npy")}
		if _, err := os.Stat(filepath.Join(p, "index.csv")); err == nil {
			files = append(files, filepath.Join(p, "index.csv"))
		}
		return shard.HashFiles(files...)
	}
	return shard.HashFiles(p)
}

// cohortKey hashes what names a cohort of volumes: each included patient's id, file and size,
// and the labels' and split's contents.
func cohortKey(c *ucli.Context, cohort *data.Cohort) (string, error) {
	var lines []string
	for _, f := range []string{c.String("metadata_csv"), c.String("include_csv")} {
		if f != "" {
			h, err := shard.HashFiles(f)
			if err != nil {
				return "", err
			}
			lines = append(lines, h)
		}
	}
	for _, p := range cohort.Patients {
		fi, err := os.Stat(p.ROIPath)
		if err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("%s %s %d", p.ID, filepath.Base(p.ROIPath), fi.Size()))
	}
	return shard.HashStrings(lines...), nil
}

// scoreProvenance is what a score shard is made from.
func scoreProvenance(c *ucli.Context, sp shard.Spec, method string) (shard.Provenance, error) {
	p := shard.Provenance{Kind: "scores", Shard: sp.I, Shards: sp.N, Method: method, Seed: c.Int("seed"),
		Options: fmt.Sprintf("n_samples=%d t_min=%g t_max=%g n_steps=%d solver=%s t_small=%d timesteps=%d schedule_type=%s",
			c.Int("n_samples"), c.Float64("t_min"), c.Float64("t_max"), c.Int("n_steps"), c.String("solver"),
			c.Int("t_small"), c.Int("timesteps"), c.String("schedule_type"))}
	var err error
	if p.Model, err = shard.HashFiles(c.String("model")); err != nil {
		return p, err
	}
	if l := c.String("latents"); l != "" && method != "ae_recon" {
		p.Cohort, err = latentsKey(l)
		return p, err
	}
	// Volumes: the autoencoder and the preprocessing change the scores too.
	prep, err := preprocessFrom(c)
	if err != nil {
		return p, err
	}
	p.Options += fmt.Sprintf(" prep=%v", prep)
	if ae := c.String("ae_model_path"); ae != "" && method != "ae_recon" {
		h, err := shard.HashFiles(ae)
		if err != nil {
			return p, err
		}
		p.Options += " ae=" + h
	}
	cohort, err := data.ScanCohort(data.CohortOptions{Root: c.String("root"), MetadataCSV: c.String("metadata_csv"), SplitCSV: c.String("include_csv"), DefaultLabel: -1})
	if err != nil {
		return p, err
	}
	p.Cohort, err = cohortKey(c, cohort)
	return p, err
}

// skipComplete reports (and says) when a shard's output is already complete.
func skipComplete(sidecar string, want shard.Provenance, outputs ...string) bool {
	if !shard.Complete(sidecar, want, outputs...) {
		return false
	}
	fmt.Fprintf(stdout, "shard %d/%d already complete (%s): skipping\n", want.Shard, want.Shards, sidecar)
	return true
}

// finishShard records a shard's provenance once its outputs are written.
func finishShard(sidecar string, p shard.Provenance, outputs ...string) error {
	h, err := shard.HashFiles(outputs...)
	if err != nil {
		return err
	}
	p.Output = h
	return shard.Write(sidecar, p)
}

// readParts reads the sidecars of a merge's inputs and checks they are one whole run; it
// returns nil parts when no input has one (files from before provenance, merged as given).
func readParts(paths []string, folder bool, outputs func(string) []string) ([]shard.Part, error) {
	var parts []shard.Part
	var bare []string
	for _, p := range paths {
		sc := shard.SidecarPath(p, folder)
		pv, err := shard.Read(sc)
		if os.IsNotExist(err) {
			bare = append(bare, p)
			continue
		}
		if err != nil {
			return nil, err
		}
		h, err := shard.HashFiles(outputs(p)...)
		if err != nil {
			return nil, err
		}
		if h != pv.Output {
			return nil, fmt.Errorf("%s: contents differ from what its shard %d/%d recorded in %s (overwritten or incomplete): run that array task again", p, pv.Shard, pv.Shards, sc)
		}
		parts = append(parts, shard.Part{Name: p, P: pv})
	}
	if len(parts) == 0 {
		return nil, nil
	}
	if len(bare) > 0 {
		return nil, fmt.Errorf("%v: no shard provenance (%s) beside them, unlike the other inputs: not outputs of the same sharded run?", bare, filepath.Base(shard.SidecarPath("x", folder)))
	}
	if err := shard.Check(parts); err != nil {
		return nil, err
	}
	return parts, nil
}

func init() {
	register(&ucli.Command{
		Name:      "merge-latents",
		Usage:     "join the latents folders of a sharded extract into one",
		UsageText: "latentad merge-latents parts/lat_0 parts/lat_1 … --out latents/",
		Description: "Each `extract --shard` folder holds rows i, i+n, … of the cohort and a shard.json saying\n" +
			"which shard it is and what made it (autoencoder hash, preprocessing, cohort hash). The merge\n" +
			"checks that every shard 0…n-1 is given exactly once and that all come from the same\n" +
			"autoencoder, options and cohort — naming the missing, duplicate or foreign ones — and\n" +
			"writes latents.npy and index.csv in cohort order, exactly as one unsharded extract would.",
		Flags:  []ucli.Flag{stringFlag("out", "", "merged latents folder to write (required)")},
		Action: runMergeLatents,
	})
}

func runMergeLatents(c *ucli.Context) error {
	out := c.String("out")
	if out == "" {
		return usageError("--out is required")
	}
	if c.NArg() == 0 {
		return usageError("give the shard folders to merge")
	}
	files := func(d string) []string {
		return []string{filepath.Join(d, "latents.npy"), filepath.Join(d, "index.csv")}
	}
	parts, err := readParts(c.Args().Slice(), true, files)
	if err != nil {
		return err
	}
	if parts == nil {
		return fmt.Errorf("%s: no shard.json in the folders: merge-latents joins the outputs of `extract --shard`", c.Args().First())
	}
	shard.Sort(parts)
	total := parts[0].P.Total
	merged := &data.Latents{Index: make([]data.IndexRow, total)}
	for _, p := range parts {
		l, err := data.ReadLatents(p.Name)
		if err != nil {
			return err
		}
		rows := shard.Spec{I: p.P.Shard, N: p.P.Shards}.Rows(total)
		if len(l.Index) != len(rows) || l.Array.Shape[0] != len(rows) {
			return fmt.Errorf("%s: %d latents, but shard %d/%d of %d rows has %d", p.Name, l.Array.Shape[0], p.P.Shard, p.P.Shards, total, len(rows))
		}
		if merged.Array.Data == nil {
			merged.Array = compute.NewArray(append([]int{total}, l.Array.Shape[1:]...)...)
		} else if !slices.Equal(merged.Array.Shape[1:], l.Array.Shape[1:]) {
			return fmt.Errorf("%s: latents of shape %v, the others' %v", p.Name, l.Array.Shape[1:], merged.Array.Shape[1:])
		}
		per := len(l.Array.Data) / max(1, len(rows))
		for k, r := range rows {
			copy(merged.Array.Data[r*per:(r+1)*per], l.Array.Data[k*per:(k+1)*per])
			merged.Index[r] = l.Index[k]
		}
	}
	if err := data.WriteLatents(out, merged); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merged %d shards, %d latents → %s/latents.npy\n", len(parts), total, out)
	return nil
}

// shardRowsNote is the help text shared by the sharded commands.
var shardRowsNote = "--shard i/n (or slurm: this task of a Slurm job array; slurm/N: this task, N shards, so that one task can be re-submitted alone) processes rows i, i+n, … of the cohort; " +
	"put {i} in --out for the shard number. Each shard writes its outputs atomically with a provenance file " +
	"beside them, and a shard whose outputs are complete is skipped when run again (re-submit the array to finish it)."
