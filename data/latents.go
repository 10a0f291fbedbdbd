package data

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"

	"github.com/latentad/latentad/compute"
)

// Latents folder file names.
const (
	LatentsFile = "latents.npy"
	IndexFile   = "index.csv"
)

// IndexRow describes one latent: a row of index.csv (id,label,age,sex,source).
type IndexRow struct {
	ID     string
	Label  int     // 0 normal, 1 anomaly, -1 unknown (written as an empty field)
	Age    float64 // NaN when unknown (written as an empty field)
	Sex    string  // "F", "M" or ""
	Source string  // where the latent came from, e.g. the volume's path
}

// Latents are N latents (N, C, D, H, W) and, row for row, what they are.
type Latents struct {
	Array compute.Array
	Index []IndexRow
}

// ReadLatents reads a latents folder (latents.npy + index.csv) or a bare .npy file. For a
// .npy with an index.csv beside it, that index is used; without one, ids are the row
// numbers "0", "1", … and labels unknown (-1). The array must be 5-D (N, C, D, H, W).
func ReadLatents(path string) (*Latents, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	npy, index := path, filepath.Join(filepath.Dir(path), IndexFile)
	if st.IsDir() {
		npy, index = filepath.Join(path, LatentsFile), filepath.Join(path, IndexFile)
		if _, err := os.Stat(index); err != nil {
			return nil, fmt.Errorf("latents folder %s: %w (a latents folder holds %s and %s)", path, err, LatentsFile, IndexFile)
		}
	}
	a, err := ReadNPY(npy)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 5 {
		return nil, fmt.Errorf("%s: latents have shape %v, want 5-D (N, C, D, H, W)", npy, a.Shape)
	}
	l := &Latents{Array: a}
	if _, err := os.Stat(index); err == nil {
		if l.Index, err = ReadIndex(index); err != nil {
			return nil, err
		}
		if len(l.Index) != a.Shape[0] {
			return nil, fmt.Errorf("%s lists %d latents but %s holds %d", index, len(l.Index), npy, a.Shape[0])
		}
	} else {
		for i := 0; i < a.Shape[0]; i++ {
			l.Index = append(l.Index, IndexRow{ID: strconv.Itoa(i), Label: -1, Age: math.NaN()})
		}
	}
	return l, nil
}

// ReadIndex reads an index.csv. Only the id column is required; label, age, sex and
// source are read when present.
func ReadIndex(path string) ([]IndexRow, error) {
	header, rows, lines, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	ci := column(header, "id")
	if ci < 0 {
		return nil, fmt.Errorf("index CSV %s lacks the id column (it has %s); want id,label,age,sex,source", path, strings.Join(header, ", "))
	}
	cl, ca, cs, cr := column(header, "label"), column(header, "age"), column(header, "sex"), column(header, "source")
	out := make([]IndexRow, 0, len(rows))
	for k, rec := range rows {
		r := IndexRow{ID: field(rec, ci), Label: -1, Age: math.NaN(), Sex: field(rec, cs), Source: field(rec, cr)}
		if s := field(rec, cl); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f != math.Trunc(f) {
				return nil, fmt.Errorf("index CSV %s line %d: label %q is not an integer", path, lines[k], s)
			}
			r.Label = int(f)
		}
		if s := field(rec, ca); s != "" && !strings.EqualFold(s, "nan") {
			if r.Age, err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("index CSV %s line %d: age %q is not a number", path, lines[k], s)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// WriteLatents writes dir/latents.npy and dir/index.csv, each atomically, creating dir.
func WriteLatents(dir string, l *Latents) error {
	if err := l.Array.Check(); err != nil {
		return err
	}
	if len(l.Array.Shape) < 1 || len(l.Index) != l.Array.Shape[0] {
		return fmt.Errorf("latents of shape %v with %d index rows: want one row per latent", l.Array.Shape, len(l.Index))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := WriteNPY(filepath.Join(dir, LatentsFile), l.Array); err != nil {
		return err
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"id", "label", "age", "sex", "source"})
	for _, r := range l.Index {
		label, age := "", ""
		if r.Label >= 0 {
			label = strconv.Itoa(r.Label)
		}
		if !math.IsNaN(r.Age) {
			age = strconv.FormatFloat(r.Age, 'g', -1, 64)
		}
		w.Write([]string{r.ID, label, age, r.Sex, r.Source})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, IndexFile), b.Bytes())
}
