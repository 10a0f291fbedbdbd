package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/latentad/latentad/internal/atomicfile"

	ucli "github.com/urfave/cli/v2"
)

func init() {
	register(&ucli.Command{
		Name:      "merge-scores",
		Usage:     "join the scores CSVs of a sharded run into one",
		UsageText: "latentad merge-scores part0.csv part1.csv … --out scores.csv",
		Description: "Rows of `score --shard i/n` outputs carry their cohort index; the merged file lists them\n" +
			"in cohort order, exactly as one unsharded run would. Files without an index column are\n" +
			"concatenated in the order given. Outputs of `score --shard` carry a provenance file\n" +
			"(scores.csv.shard.json); the merge checks that every shard 0…n-1 is given exactly once,\n" +
			"that each file is whole, and that all come from the same model, method, seed, options and\n" +
			"cohort, naming the missing, duplicate or foreign shards.",
		Flags:  []ucli.Flag{stringFlag("out", "", "merged CSV to write (required)")},
		Action: runMerge,
	})
}

type scoreRow struct {
	index  int
	fields []string
}

func runMerge(c *ucli.Context) error {
	out := c.String("out")
	if out == "" {
		return usageError("--out is required")
	}
	if c.NArg() == 0 {
		return usageError("give the CSV files to merge")
	}
	parts, err := readParts(c.Args().Slice(), false, func(p string) []string { return []string{p} })
	if err != nil {
		return err
	}
	var header []string
	var rows []scoreRow
	indexed := true
	for _, p := range c.Args().Slice() {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("%s: empty file (no header)", p)
		}
		if header == nil {
			header = recs[0]
		} else if !slices.Equal(header, recs[0]) {
			return fmt.Errorf("%s: header %v differs from the first file's %v", p, recs[0], header)
		}
		ix := slices.Index(header, "index")
		if ix < 0 {
			indexed = false
		}
		for i, r := range recs[1:] {
			row := scoreRow{index: -1, fields: r}
			if ix >= 0 {
				if row.index, err = strconv.Atoi(r[ix]); err != nil {
					return fmt.Errorf("%s line %d: index %q is not an integer", p, i+2, r[ix])
				}
			}
			rows = append(rows, row)
		}
	}
	if indexed {
		slices.SortStableFunc(rows, func(a, b scoreRow) int { return a.index - b.index })
		for i := 1; i < len(rows); i++ {
			if rows[i].index == rows[i-1].index {
				return fmt.Errorf("cohort index %d appears twice: the same shard given twice?", rows[i].index)
			}
		}
	}
	if len(parts) > 0 && len(rows) != parts[0].P.Total {
		return fmt.Errorf("the shards hold %d rows, but their cohort has %d", len(rows), parts[0].P.Total)
	}
	return atomicfile.Write(out, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(header)
		for _, r := range rows {
			cw.Write(r.fields)
		}
		cw.Flush()
		return cw.Error()
	})
}
