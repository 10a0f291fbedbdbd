package fallback

import (
	"fmt"

	"github.com/latentad/latentad/compute"
)

// ConvShape is the geometry of one 3-D convolution, y = conv(x, w): x is (N, Ci, In…),
// w is (Co, Ci, K…), y is (N, Co, Out…), with Out = (In + 2·Pad - K)/Stride + 1 per axis
// (D, H, W). The backward ops use the same description of the forward convolution. Its
// fields match those of kern.ConvShape, so one converts to the other.
type ConvShape struct {
	N, Ci, Co               int
	In, K, Out, Stride, Pad [3]int
}

// The three convolutions the Device runs. They are variables so that faster kernels with
// the same contract (outputs overwritten, not accumulated; bias and db may be nil) can be
// put in their place, e.g.
//
//	convForward = func(x, w, b, y []float32, s ConvShape) { kern.Conv3dForward(x, w, b, y, kern.ConvShape(s)) }
var (
	convForward        = conv3dForward
	convBackwardData   = conv3dBackwardData
	convBackwardWeight = conv3dBackwardWeight
)

func (d *cpu) Conv3d(x, w, bias, y *compute.Tensor, p compute.Conv) {
	s := convShape("Conv3d", x, w, y, p)
	var bs []float32
	if bias != nil {
		mustShape("Conv3d", "bias", bias, s.Co)
		bs = d.data(bias)
	}
	convForward(d.data(x), d.data(w), bs, d.data(y), s)
}

func (d *cpu) Conv3dBackwardData(dy, w, dx *compute.Tensor, p compute.Conv) {
	s := convShape("Conv3dBackwardData", dx, w, dy, p)
	convBackwardData(d.data(dy), d.data(w), d.data(dx), s)
}

func (d *cpu) Conv3dBackwardWeight(x, dy, dw, db *compute.Tensor, p compute.Conv) {
	s := convShape("Conv3dBackwardWeight", x, dw, dy, p)
	var dbs []float32
	if db != nil {
		mustShape("Conv3dBackwardWeight", "db", db, s.Co)
		dbs = d.data(db)
	}
	convBackwardWeight(d.data(x), d.data(dy), d.data(dw), dbs, s)
}

// convShape checks that x (N,Ci,D,H,W), w (Co,Ci,kD,kH,kW) and y (N,Co,D',H',W') agree
// with p and returns their geometry.
func convShape(op string, x, w, y *compute.Tensor, p compute.Conv) ConvShape {
	if x.Rank() != 5 || w.Rank() != 5 || y.Rank() != 5 {
		panic(fmt.Sprintf("fallback: %s needs 5-D tensors, got input %v, weight %v, output %v", op, x, w, y))
	}
	s := ConvShape{N: x.Dim(0), Ci: x.Dim(1), Co: w.Dim(0), Stride: p.Stride, Pad: p.Pad}
	for a := range 3 {
		s.In[a], s.K[a], s.Out[a] = x.Dim(2+a), w.Dim(2+a), y.Dim(2+a)
		if p.Stride[a] < 1 || p.Pad[a] < 0 || s.K[a] < 1 || s.In[a]+2*p.Pad[a] < s.K[a] ||
			compute.OutSize(s.In[a], s.K[a], p.Stride[a], p.Pad[a]) != s.Out[a] || s.Out[a] < 1 {
			panic(fmt.Sprintf("fallback: %s: input %v, weight %v and output %v do not fit stride %v, padding %v",
				op, x, w, y, p.Stride, p.Pad))
		}
	}
	if w.Dim(1) != s.Ci || y.Dim(0) != s.N || y.Dim(1) != s.Co {
		panic(fmt.Sprintf("fallback: %s: channels or batch of input %v, weight %v and output %v disagree", op, x, w, y))
	}
	return s
}

// conv3dForward computes y = conv(x, w) + bias (bias may be nil) for any kernel, stride
// and padding.
func conv3dForward(x, w, bias, y []float32, s ConvShape) { forwardTiled(x, w, bias, y, s) }

// conv3dBackwardData computes dx = convᵀ(dy, w), the gradient of the forward convolution
// with respect to x, overwriting dx.
func conv3dBackwardData(dy, w, dx []float32, s ConvShape) { backwardDataTiled(dy, w, dx, s) }

// conv3dBackwardWeight computes dw[co,ci,k…] = Σ_{n,o…} dy[n,co,o…]·x[n,ci,o·stride-pad+k…]
// and, when db is not nil, db[co] = Σ dy[n,co,…], overwriting both.
func conv3dBackwardWeight(x, dy, dw, db []float32, s ConvShape) {
	backwardWeightTiled(x, dy, dw, s)
	if db != nil {
		outSz := s.Out[0] * s.Out[1] * s.Out[2]
		for co := range s.Co {
			var sum float64
			for n := range s.N {
				sum += sum64(dy[(n*s.Co+co)*outSz : (n*s.Co+co+1)*outSz])
			}
			db[co] = float32(sum)
		}
	}
}
