package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/eval"
)

func init() {
	register(&ucli.Command{
		Name:      "metrics",
		Usage:     "ROC-AUC, PR-AUC, Mann-Whitney U and bootstrap CIs of a scores CSV",
		UsageText: "latentad metrics --scores scores.csv [--json] [--plot roc.png] [--bootstrap 2000] [--seed 42]",
		Description: "Reads a CSV with a header and the columns label (1 anomaly, 0 normal) and score (higher =\n" +
			"more anomalous), optionally id, in any order, and prints ROC-AUC, PR-AUC (average precision,\n" +
			"scikit-learn's definition), the one-sided Mann-Whitney U test (anomaly > normal, scipy's\n" +
			"conventions), the class means, percentile bootstrap 95% CIs and the sensitivity and\n" +
			"specificity at the Youden threshold.",
		Flags: []ucli.Flag{
			stringFlag("scores", "", "scores CSV with columns label and score (required)"),
			boolFlag("json", "print one JSON object instead of the readable summary"),
			stringFlag("plot", "", "write a PNG with the ROC curve and the two class score histograms"),
			intFlag("bootstrap", 2000, "bootstrap resamples for the 95% CIs (0: no CIs)"),
			intFlag("seed", 42, "seed of the bootstrap"),
		},
		Action: runMetrics,
	})
}

func runMetrics(c *ucli.Context) error {
	path := c.String("scores")
	if path == "" {
		return usageError("metrics: --scores is required: give the scores CSV (columns label and score)")
	}
	if c.NArg() > 0 {
		return usageError("metrics: unexpected argument %q; give the file with --scores", c.Args().First())
	}
	nBoot := c.Int("bootstrap")
	if nBoot < 0 {
		return usageError("metrics: --bootstrap %d; give 0 (no CIs) or a number of resamples such as 2000", nBoot)
	}
	set, err := eval.ReadScoresCSV(path)
	if err != nil {
		return err
	}
	if err := metricsCheckClasses(path, set.Labels); err != nil {
		return err
	}
	sum, err := eval.Evaluate(set.Scores, set.Labels, eval.Options{Bootstrap: nBoot, Seed: uint64(c.Int("seed")), Level: 0.95})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if plotPath := c.String("plot"); plotPath != "" {
		if err := eval.SaveMetricsPNG(plotPath, filepath.Base(path), set.Scores, set.Labels); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(stdout)
		return enc.Encode(sum)
	}
	metricsPrint(path, sum, nBoot, c.Int("seed"), c.String("plot"))
	return nil
}

// metricsCheckClasses names the file when a class is missing, which is the usual mistake
// (a scores CSV of one cohort only).
func metricsCheckClasses(path string, labels []int) error {
	var pos int
	for _, l := range labels {
		pos += l
	}
	switch {
	case pos == 0:
		return fmt.Errorf("%s: all %d rows have label 0 (normal); the metrics need anomalies (label 1) too", path, len(labels))
	case pos == len(labels):
		return fmt.Errorf("%s: all %d rows have label 1 (anomaly); the metrics need normals (label 0) too", path, len(labels))
	}
	return nil
}

func metricsPrint(path string, s eval.Summary, nBoot, seed int, plotPath string) {
	var b strings.Builder
	ci := func(iv eval.Interval) string {
		if nBoot == 0 {
			return ""
		}
		return fmt.Sprintf("   95%% CI [%.4f, %.4f]", iv[0], iv[1])
	}
	sig := "not significant"
	if s.MWSignificant {
		sig = "significant"
	}
	fmt.Fprintf(&b, "%s: %d anomalies, %d normals\n", path, s.NAnomaly, s.NNormal)
	fmt.Fprintf(&b, "  ROC-AUC           %.4f%s\n", s.ROCAUC, ci(s.ROCAUCCI))
	fmt.Fprintf(&b, "  PR-AUC (AP)       %.4f%s\n", s.PRAUC, ci(s.PRAUCCI))
	fmt.Fprintf(&b, "  Mann-Whitney U    %g   p = %.4g (one-sided, anomaly > normal, %s; %s at %g)\n",
		s.MWStatistic, s.MWPValue, s.MWMethod, sig, eval.Significance)
	fmt.Fprintf(&b, "  Mean score        anomaly %.6g, normal %.6g\n", s.AnomalyMean, s.NormalMean)
	fmt.Fprintf(&b, "  Youden threshold  %.6g   sensitivity %.4f, specificity %.4f\n", s.YoudenThreshold, s.Sensitivity, s.Specificity)
	if nBoot > 0 {
		fmt.Fprintf(&b, "  Bootstrap         %d resamples, seed %d (%d held both classes)\n", nBoot, seed, s.BootstrapUsed)
	}
	if plotPath != "" {
		fmt.Fprintf(&b, "  Plot              %s\n", plotPath)
	}
	fmt.Fprint(stdout, b.String())
}
