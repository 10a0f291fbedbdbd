// Package rng is latentad's one source of random numbers: seeded host generators whose
// draws are uploaded to the device, so one seed gives the same numbers on every backend.
//
// Streams are keyed (seed, a, b): training draws from (seed, epoch, batch) and scoring from
// (seed, sample index), so resuming a run, changing the scoring batch size or splitting a
// cohort into shards does not change a single draw.
package rng

import (
	"math"
	"math/rand/v2"
)

// New returns a generator for the stream keyed by seed and the given keys.
func New(seed uint64, keys ...uint64) *rand.Rand {
	s := seed ^ 0x9e3779b97f4a7c15
	for _, k := range keys {
		s = mix(s ^ mix(k+0x632be59bd9b4e019))
	}
	return rand.New(rand.NewPCG(seed, mix(s)))
}

// mix is SplitMix64's finaliser: distinct keys give unrelated streams.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Normal fills dst with standard normal samples.
func Normal(r *rand.Rand, dst []float32) {
	for i := range dst {
		dst[i] = float32(r.NormFloat64())
	}
}

// Uniform returns a float32 in [lo, hi).
func Uniform(r *rand.Rand, lo, hi float64) float32 {
	v := float32(lo + (hi-lo)*r.Float64())
	if v >= float32(hi) && hi > lo { // rounding to float32 can reach hi
		v = math.Nextafter32(float32(hi), float32(lo))
	}
	return v
}
