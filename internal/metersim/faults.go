package metersim

import "taxi-agent/internal/meter"

// Line faults the meter can inject between frames. None of them can be
// mistaken for a valid frame by a correct decoder.

// Noise writes n random bytes and returns them.
func (m *Meter) Noise(n int) ([]byte, error) {
	m.wmu.Lock()
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(m.rng.Uint32())
	}
	m.wmu.Unlock()
	return p, m.write(p)
}

// WriteRaw writes bytes as they are.
func (m *Meter) WriteRaw(p []byte) error { return m.write(p) }

// BrokenCheck writes f with a wrong check byte.
func (m *Meter) BrokenCheck(f meter.Frame) error {
	w := meter.AppendFrame(nil, m.vendor(f))
	w[len(w)-3] ^= 0x5A
	return m.write(w)
}

// MissingEnd writes f with a wrong end marker.
func (m *Meter) MissingEnd(f meter.Frame) error {
	w := meter.AppendFrame(nil, m.vendor(f))
	w[len(w)-1] ^= 0xFF
	return m.write(w)
}

// Truncated writes the first n bytes of f, 1 ≤ n < its length; n ≤ 0
// picks a random cut. It returns the number of bytes written.
func (m *Meter) Truncated(f meter.Frame, n int) (int, error) {
	w := meter.AppendFrame(nil, m.vendor(f))
	if n <= 0 || n >= len(w) {
		m.wmu.Lock()
		n = 1 + m.rng.IntN(len(w)-1)
		m.wmu.Unlock()
	}
	return n, m.write(w[:n])
}
