package eval

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Candidate is one parameter setting of a method, scored on the validation split.
type Candidate struct {
	Params string // e.g. "K=10 t_range=[0,0.3]"
	Val    Summary
}

// Select returns the index of the setting SPEC section 5 chooses: the best validation ROC-AUC
// among the candidates whose anomaly mean exceeds their normal mean (scores pointing the right
// way), or, when there is none, the best validation ROC-AUC overall. Ties go to the first
// candidate; a NaN ROC-AUC never wins over a number. It returns -1 for no candidates.
func Select(cands []Candidate) (best int) {
	pick := func(eligible func(Candidate) bool) int {
		b := -1
		for i, c := range cands {
			if !eligible(c) {
				continue
			}
			if b < 0 || c.Val.ROCAUC > cands[b].Val.ROCAUC || (math.IsNaN(cands[b].Val.ROCAUC) && !math.IsNaN(c.Val.ROCAUC)) {
				b = i
			}
		}
		return b
	}
	if b := pick(func(c Candidate) bool { return c.Val.AnomalyMean > c.Val.NormalMean }); b >= 0 {
		return b
	}
	return pick(func(Candidate) bool { return true })
}

// Row is one line of the comparison table: a method, its chosen parameters, the validation
// metrics they were chosen on (nil when the method has nothing to tune and was not scored on
// validation) and the one evaluation on the test split.
type Row struct {
	Method string   `json:"method"`
	Params string   `json:"params"`
	Val    *Summary `json:"val,omitempty"`
	Test   Summary  `json:"test"`
}

// WriteMarkdown writes the rows as a Markdown table for reports.
func WriteMarkdown(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| Method | Params | Val ROC-AUC | Test ROC-AUC [95% CI] | Test PR-AUC [95% CI] | MW U | MW p | Anomaly mean | Normal mean | Sensitivity | Specificity |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		val := "–"
		if r.Val != nil {
			val = fmt.Sprintf("%.4f", r.Val.ROCAUC)
		}
		t := r.Test
		sig := ""
		if t.MWSignificant {
			sig = " *"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.4f %s | %.4f %s | %g | %.3g%s | %.4g | %.4g | %.3f | %.3f |\n",
			mdEscape(r.Method), mdEscape(r.Params), val, t.ROCAUC, fmtCI(t.ROCAUCCI), t.PRAUC, fmtCI(t.PRAUCCI),
			t.MWStatistic, t.MWPValue, sig, t.AnomalyMean, t.NormalMean, t.Sensitivity, t.Specificity)
	}
	if len(rows) > 0 {
		fmt.Fprintf(&b, "\nTest split: %d anomalies, %d normals. * Mann-Whitney p < %g (one-sided, anomaly > normal). "+
			"Sensitivity and specificity at the Youden threshold.\n", rows[0].Test.NAnomaly, rows[0].Test.NNormal, Significance)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtCI(iv Interval) string {
	if !finite(iv[0]) || !finite(iv[1]) {
		return "[–]"
	}
	return fmt.Sprintf("[%.4f, %.4f]", iv[0], iv[1])
}

func mdEscape(s string) string {
	if s == "" {
		return "–"
	}
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// tableCSVHeader are the columns WriteTableCSV writes.
var tableCSVHeader = []string{"method", "params",
	"val_roc_auc", "val_pr_auc", "val_mw_p_value", "val_anomaly_mean", "val_normal_mean",
	"test_roc_auc", "test_roc_auc_ci_lo", "test_roc_auc_ci_hi", "test_pr_auc", "test_pr_auc_ci_lo", "test_pr_auc_ci_hi",
	"test_mw_statistic", "test_mw_p_value", "test_mw_significant", "test_anomaly_mean", "test_normal_mean",
	"test_n_anomaly", "test_n_normal", "test_youden_threshold", "test_sensitivity", "test_specificity"}

// WriteTableCSV writes the rows as CSV at full precision; unknown values are empty cells.
func WriteTableCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(tableCSVHeader); err != nil {
		return err
	}
	num := func(v float64) string {
		if !finite(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, r := range rows {
		rec := []string{r.Method, r.Params}
		if r.Val != nil {
			rec = append(rec, num(r.Val.ROCAUC), num(r.Val.PRAUC), num(r.Val.MWPValue), num(r.Val.AnomalyMean), num(r.Val.NormalMean))
		} else {
			rec = append(rec, "", "", "", "", "")
		}
		t := r.Test
		rec = append(rec, num(t.ROCAUC), num(t.ROCAUCCI[0]), num(t.ROCAUCCI[1]), num(t.PRAUC), num(t.PRAUCCI[0]), num(t.PRAUCCI[1]),
			num(t.MWStatistic), num(t.MWPValue), strconv.FormatBool(t.MWSignificant), num(t.AnomalyMean), num(t.NormalMean),
			strconv.Itoa(t.NAnomaly), strconv.Itoa(t.NNormal), num(t.YoudenThreshold), num(t.Sensitivity), num(t.Specificity))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTableJSON writes the rows as an indented JSON array of {method, params, val, test}.
func WriteTableJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}
