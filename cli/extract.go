package cli

import (
	"fmt"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/shard"
)

func init() {
	register(&ucli.Command{
		Name:      "extract",
		Usage:     "encode a cohort's volumes into a latents folder",
		UsageText: "latentad extract --ae_model_path runs/ae/model.safetensors --root cohort/ [--metadata_csv M --include_csv S] --out lat/",
		Description: "Encodes each included volume, in sorted folder order, with the autoencoder's encoder and\n" +
			"writes DIR/latents.npy (N, 128, 8, 16, 16 float32, numpy-compatible) and DIR/index.csv\n" +
			"(id,label,age,sex,source; labels from the metadata CSV, empty when unknown).\n" + shardRowsNote +
			" Join the shard folders with `latentad merge-latents`.",
		Flags: append(volumeFlags(),
			stringFlag("root", "", "cohort folder: <root>/<pid>/<pid>_roi.nii.gz (required)"),
			stringFlag("include_csv", "", "split CSV of the patients to include"),
			stringFlag("shard", "", "i/n or slurm: encode only patients i, i+n, … (one folder per shard; {i} in --out is the shard number)"),
			stringFlag("out", "", "latents folder to write (required)"),
			deviceFlag(),
		),
		Action: runExtract,
	})
}

func runExtract(c *ucli.Context) error {
	root, out := c.String("root"), c.String("out")
	if root == "" || out == "" {
		return usageError("--root and --out are required")
	}
	if c.String("ae_model_path") == "" {
		return usageError("--ae_model_path is required: the autoencoder that encodes the volumes")
	}
	sp, slurm, err := shardOf(c)
	if err != nil {
		return err
	}
	if out, err = sp.Path(out, slurm); err != nil {
		return usageError("%v", err)
	}
	prep, err := preprocessFrom(c)
	if err != nil {
		return err
	}
	cohort, err := data.ScanCohort(data.CohortOptions{Root: root, MetadataCSV: c.String("metadata_csv"), SplitCSV: c.String("include_csv"), DefaultLabel: -1})
	if err != nil {
		return err
	}
	var prov shard.Provenance
	sidecar := shard.SidecarPath(out, true)
	outFiles := []string{filepath.Join(out, "latents.npy"), filepath.Join(out, "index.csv")}
	if sharded(sp, slurm) {
		if prov, err = extractProvenance(c, sp, cohort, prep); err != nil {
			return err
		}
		if skipComplete(sidecar, prov, outFiles...) {
			return nil
		}
		var keep []data.Patient
		for _, i := range sp.Rows(len(cohort.Patients)) {
			keep = append(keep, cohort.Patients[i])
		}
		cohort.Patients = keep
	}
	if s := cohort.Skipped(); s != "" {
		fmt.Fprintln(stderr, s)
	}
	dev, err := openDevice(c.String("device"))
	if err != nil {
		return err
	}
	ae, err := loadAE(dev, c.String("ae_model_path"))
	if err != nil {
		return err
	}
	defer ae.Release()
	l, err := encodeCohort(dev, ae, cohort, prep)
	if err != nil {
		return err
	}
	if err := data.WriteLatents(out, l); err != nil {
		return err
	}
	if sharded(sp, slurm) {
		if err := finishShard(sidecar, prov, outFiles...); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "encoded %d volumes → %s/latents.npy %v\n", len(l.Index), out, l.Array.Shape)
	return nil
}

// extractProvenance is what an extract shard is made from: the autoencoder, the
// preprocessing and the whole cohort (before the shard's selection).
func extractProvenance(c *ucli.Context, sp shard.Spec, cohort *data.Cohort, prep data.Preprocess) (shard.Provenance, error) {
	p := shard.Provenance{Kind: "latents", Shard: sp.I, Shards: sp.N, Total: len(cohort.Patients), Method: "extract", Options: fmt.Sprintf("prep=%v", prep)}
	var err error
	if p.Model, err = shard.HashFiles(c.String("ae_model_path")); err != nil {
		return p, err
	}
	p.Cohort, err = cohortKey(c, cohort)
	return p, err
}
