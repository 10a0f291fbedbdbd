package cli

import (
	"os"
	"runtime/debug"
)

// trainGCPercent is the collector's heap growth during training (GOGC; Go's default is 100).
const trainGCPercent = 10

// trainingGC sets up the garbage collector for a training run and returns what restores
// it. On the CPU device a run's tensors live outside the Go heap (fallback/mem.go); what
// the heap holds — the data set and the convolutions' scratch — stays the same from step
// to step, and a step leaves a few hundred KB of garbage. With GOGC=100 that garbage
// would still grow the heap, over a long run, to twice its fixed part; at 10% it stays
// close to it, for a collection every few dozen steps. It also hands the garbage of
// loading the data back to the OS. A GOGC the user set wins.
func trainingGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(trainGCPercent)
	debug.FreeOSMemory()
	return func() { debug.SetGCPercent(old) }
}
