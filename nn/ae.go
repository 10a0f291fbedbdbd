package nn

import (
	"fmt"
	"slices"

	"github.com/latentad/latentad/compute"
)

// AE is the seed's Tiny3DAE (SPEC §1.4). Encoder enc: Conv3d(1→b, k3 s1 p1), then three
// Conv3d(k4 s2 p1) doubling the channels to 8b, each followed by ReLU. Decoder dec: three
// ConvTranspose3d(k4 s2 p1) halving the channels back to b, each followed by ReLU, then
// Conv3d(b→1, k3 s1 p1) and Tanh. Keys enc.{0,2,4,6}.*, dec.{0,2,4,6}.*.
type AE struct {
	dev    compute.Device
	base   int
	params *ParamSet

	enc  [4]*Conv3d
	dec  [3]*ConvTranspose3d
	out  *Conv3d
	bufs pool
	x    *slot    // copy of the input, kept for backward
	acts [8]*slot // post-ReLU activations: enc 0..3 (acts[3] is the latent), dec 0..2 at 4..6, recon at 7
	lat  [4]*slot // Encode's own buffers, so Encode does not clobber Forward's activations
	grad [2]*slot // ping-pong gradient buffers of the largest activation's size
	fwd  bool
}

// NewTiny3DAE builds the autoencoder with base channels (16 in the seed) and PyTorch's
// default initialisation drawn from a generator seeded with seed.
func NewTiny3DAE(dev compute.Device, base int, seed uint64) (*AE, error) {
	if base < 1 {
		return nil, fmt.Errorf("autoencoder: base channels must be at least 1, got %d", base)
	}
	m := &AE{dev: dev, base: base}
	var b builder
	ch := []int{1, base, 2 * base, 4 * base, 8 * base}
	m.enc[0] = newConv3d(&b, "enc.0", 1, base, 3, compute.Conv3x3)
	for i := 1; i < 4; i++ {
		m.enc[i] = newConv3d(&b, fmt.Sprintf("enc.%d", 2*i), ch[i], ch[i+1], 4, compute.ConvS2P1)
	}
	for i := range 3 {
		m.dec[i] = newConvTranspose3d(&b, fmt.Sprintf("dec.%d", 2*i), ch[4-i], ch[3-i], 4, compute.ConvS2P1)
	}
	m.out = newConv3d(&b, "dec.6", base, 1, 3, compute.Conv3x3)
	m.params = b.build(dev, seed)
	p := &m.bufs
	m.x = p.slot()
	for i := range m.acts {
		m.acts[i] = p.slot()
	}
	for i := range m.lat {
		m.lat[i] = p.slot()
	}
	m.grad[0], m.grad[1] = p.slot(), p.slot()
	return m, nil
}

// Base returns the base channel count.
func (m *AE) Base() int { return m.base }

// Params returns the model's parameters.
func (m *AE) Params() *ParamSet { return m.params }

// Device returns the device the model lives on.
func (m *AE) Device() compute.Device { return m.dev }

// CheckInput reports whether a volume batch of the given shape fits the autoencoder:
// (B, 1, D, H, W) with B ≥ 1 and D, H, W positive multiples of 8, so the reconstruction
// has the input's shape (the seed's volumes are 64×128×128).
func (m *AE) CheckInput(shape []int) error {
	if len(shape) != 5 || shape[0] < 1 || shape[1] != 1 {
		return fmt.Errorf("volumes of shape %v do not fit the autoencoder: want (batch, 1, D, H, W)", shape)
	}
	for i, name := range []string{"D", "H", "W"} {
		if d := shape[2+i]; d < 8 || d%8 != 0 {
			return fmt.Errorf("volumes of shape %v do not fit the autoencoder: %s = %d is not a positive multiple of 8", shape, name, d)
		}
	}
	return nil
}

// LatentShape is the encoder's output shape for an input of shape x.
func (m *AE) LatentShape(x []int) []int {
	s := slices.Clone(x)
	for i := range 4 {
		s = m.enc[i].OutShape(s)
	}
	return s
}

// Encode maps x (B,1,D,H,W) to the latent (B, 8·base, D/8, H/8, W/8) without keeping
// activations for a backward pass. The result is owned by the model and valid until the
// next Encode; Forward's activations are left alone.
func (m *AE) Encode(x *compute.Tensor) *compute.Tensor {
	m.check("Encode", x)
	dev := m.dev
	cur := x
	s := x.Shape()
	for i, l := range m.enc {
		s = l.OutShape(s)
		y := m.lat[i].get(dev, s...)
		l.Forward(dev, cur, y)
		dev.ActForward(compute.ReLU, y, y)
		cur = y
	}
	return cur
}

// Forward returns the reconstruction of x (B,1,D,H,W) and keeps the activations for
// Backward (x is copied). The result is owned by the model and valid until the next Forward.
func (m *AE) Forward(x *compute.Tensor) *compute.Tensor {
	m.check("Forward", x)
	dev := m.dev
	xc := m.x.get(dev, x.Shape()...)
	dev.Copy(xc, x)
	cur := xc
	s := x.Shape()
	// ReLU runs in place: its derivative (y > 0) can be read from the output as well as
	// from the input, so the pre-activations need not be kept.
	for i, l := range m.enc {
		s = l.OutShape(s)
		y := m.acts[i].get(dev, s...)
		l.Forward(dev, cur, y)
		dev.ActForward(compute.ReLU, y, y)
		cur = y
	}
	for i, l := range m.dec {
		s = l.OutShape(s)
		y := m.acts[4+i].get(dev, s...)
		l.Forward(dev, cur, y)
		dev.ActForward(compute.ReLU, y, y)
		cur = y
	}
	s = m.out.OutShape(s)
	y := m.acts[7].get(dev, s...)
	m.out.Forward(dev, cur, y)
	dev.ActForward(compute.Tanh, y, y) // Tanh's backward reads its output only
	m.fwd = true
	return y
}

// Backward takes dL/drecon (the shape of the last Forward's output), overwrites every
// Param.Grad and leaves drecon unchanged.
func (m *AE) Backward(drecon *compute.Tensor) {
	if !m.fwd {
		panic("nn.AE.Backward: no Forward to differentiate")
	}
	recon := m.acts[7].t
	if !compute.SameShape(drecon, recon) {
		panic(fmt.Sprintf("nn.AE.Backward: gradient of shape %v for an output of shape %v", drecon.Shape(), recon.Shape()))
	}
	dev := m.dev
	biggest := 0
	for _, a := range m.acts {
		biggest = max(biggest, a.t.Len())
	}
	buf := [2]*compute.Tensor{m.grad[0].get(dev, biggest), m.grad[1].get(dev, biggest)}
	view := func(k int, like *compute.Tensor) *compute.Tensor { return buf[k].View(0, like.Shape()...) }

	dy := view(0, recon)
	dev.ActBackward(compute.Tanh, recon, recon, drecon, dy)
	k := 0
	// act(i) is the input of layer i of the chain enc0..enc3, dec0..dec2, out.
	act := func(i int) *compute.Tensor {
		if i == 0 {
			return m.x.t
		}
		return m.acts[i-1].t
	}
	for i := 7; i >= 0; i-- {
		in := act(i)
		var dx *compute.Tensor
		if i > 0 {
			dx = view(1-k, in)
		}
		switch {
		case i == 7:
			m.out.Backward(dev, in, dy, dx)
		case i >= 4:
			m.dec[i-4].Backward(dev, in, dy, dx)
		default:
			m.enc[i].Backward(dev, in, dy, dx)
		}
		if i > 0 {
			dev.ActBackward(compute.ReLU, in, in, dx, dx) // in is post-ReLU: in > 0 ⇔ pre > 0
			dy, k = dx, 1-k
		}
	}
}

func (m *AE) check(what string, x *compute.Tensor) {
	if err := m.CheckInput(x.Shape()); err != nil {
		panic("nn.AE." + what + ": " + err.Error())
	}
}

// Release frees the parameters and every buffer; the model must not be used afterwards.
func (m *AE) Release() {
	m.bufs.release(m.dev)
	m.params.release()
}
