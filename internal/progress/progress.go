// Package progress shows long work: a live bar (mpb) with counts, a status text and an ETA
// when the output is a terminal, and plain, throttled lines when it is not (logs, CI, pipes),
// so that neither a terminal nor a log file fills with noise.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Bar tracks total steps of one named task.
type Bar struct {
	mu     sync.Mutex
	name   string
	total  int
	done   int
	status string
	start  time.Time

	w        io.Writer // plain mode
	lastLine time.Time

	p   *mpb.Progress // terminal mode
	bar *mpb.Bar
}

// Quiet disables all progress output (tests set it).
var Quiet = false

// New starts a bar on w; name says what is counted ("epoch 3/100", "encode").
func New(w io.Writer, name string, total int) *Bar {
	b := &Bar{name: name, total: total, start: time.Now(), w: w, lastLine: time.Now()}
	if Quiet || w == nil {
		b.w = io.Discard
		return b
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(32))
		b.bar = b.p.AddBar(int64(total),
			mpb.PrependDecorators(decor.Name(name+" ", decor.WC{C: decor.DindentRight}), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(
				decor.Any(func(decor.Statistics) string { b.mu.Lock(); defer b.mu.Unlock(); return b.status }, decor.WC{W: 1}),
				decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)),
		)
	}
	return b
}

// Add advances the bar by n and sets the status text (e.g. "loss 0.0123").
func (b *Bar) Add(n int, status string) {
	b.mu.Lock()
	b.done += n
	b.status = status
	done, total := b.done, b.total
	b.mu.Unlock()
	if b.bar != nil {
		b.bar.IncrBy(n)
		return
	}
	now := time.Now()
	// Logs get a line at most every 10 s, so short tasks stay quiet (their callers print
	// a summary line) and long ones still show they are alive.
	if now.Sub(b.lastLine) > 10*time.Second && done < total {
		b.lastLine = now
		el := now.Sub(b.start)
		eta := time.Duration(0)
		if done > 0 {
			eta = time.Duration(float64(el) * float64(total-done) / float64(done))
		}
		fmt.Fprintf(b.w, "%s %d/%d %s elapsed %s eta %s\n", b.name, done, total, status, el.Round(time.Second), eta.Round(time.Second))
	}
}

// Done ends the bar (also when the work stopped early).
func (b *Bar) Done() {
	if b.bar != nil {
		b.bar.Abort(false)
		b.p.Wait()
		b.bar = nil
	}
}
