package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/data"
)

func init() {
	register(&ucli.Command{
		Name:      "extract",
		Usage:     "encode a cohort's volumes into a latents folder",
		UsageText: "latentad extract --ae_model_path runs/ae/model.safetensors --root cohort/ [--metadata_csv M --include_csv S] --out lat/",
		Description: "Encodes each included volume, in sorted folder order, with the autoencoder's encoder and\n" +
			"writes DIR/latents.npy (N, 128, 8, 16, 16 float32, numpy-compatible) and DIR/index.csv\n" +
			"(id,label,age,sex,source; labels from the metadata CSV, empty when unknown).",
		Flags: append(volumeFlags(),
			stringFlag("root", "", "cohort folder: <root>/<pid>/<pid>_roi.nii.gz (required)"),
			stringFlag("include_csv", "", "split CSV of the patients to include"),
			stringFlag("shard", "", "i/n: encode only patients i, i+n, … (one folder per shard)"),
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
	si, sn, err := parseShard(c.String("shard"))
	if err != nil {
		return err
	}
	prep, err := preprocessFrom(c)
	if err != nil {
		return err
	}
	cohort, err := data.ScanCohort(data.CohortOptions{Root: root, MetadataCSV: c.String("metadata_csv"), SplitCSV: c.String("include_csv"), DefaultLabel: -1})
	if err != nil {
		return err
	}
	if sn > 1 {
		var keep []data.Patient
		for i := si; i < len(cohort.Patients); i += sn {
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
	fmt.Fprintf(stdout, "encoded %d volumes → %s/latents.npy %v\n", len(l.Index), out, l.Array.Shape)
	return nil
}
