package meter

import (
	"bytes"
	"encoding/binary"
)

// Decoder decodes frames from a byte stream that arrives in arbitrary
// pieces. Write appends bytes; Next returns the next frame or says why
// bytes were dropped. It uses the length field to find a frame's end,
// never a search for the next end marker, so 0x55 0xAA inside the data is
// harmless. On an impossible length, a missing end marker or a bad check
// byte it drops the frame's first byte, then the bytes up to the next
// possible start marker, and reports the dropped run once.
//
// The zero value is ready to use. A Decoder is not safe for concurrent
// use. Decoding a frame allocates nothing once the buffer has grown to the
// stream's working size.
type Decoder struct {
	buf  []byte // buffered bytes; buf[r:] are not yet consumed
	r    int
	last []byte // wire bytes of the last frame, or the last dropped run
}

// initialBuffer holds the largest frame twice over, so the steady state
// never grows the buffer.
const initialBuffer = 2 * (MaxLength + Overhead)

// Write appends p to the decoder's buffer. It never fails. It invalidates
// the Data of frames returned before it and the slice Last returned.
func (d *Decoder) Write(p []byte) (int, error) {
	switch {
	case d.r == len(d.buf):
		d.buf, d.r = d.buf[:0], 0
	case len(d.buf)+len(p) > cap(d.buf) && d.r > 0:
		// Move the unconsumed tail, at most a partial frame, to the front.
		n := copy(d.buf, d.buf[d.r:])
		d.buf, d.r = d.buf[:n], 0
	}
	if d.buf == nil {
		d.buf = make([]byte, 0, max(initialBuffer, len(p)))
	}
	d.buf = append(d.buf, p...)
	d.last = nil
	return len(p), nil
}

// Buffered returns the number of bytes written but not yet consumed: the
// start of a partial frame, or nothing.
func (d *Decoder) Buffered() int { return len(d.buf) - d.r }

// Reset discards all buffered bytes.
func (d *Decoder) Reset() {
	d.buf = d.buf[:0]
	d.r = 0
	d.last = nil
}

// Last returns the wire bytes of the frame the last Next returned, or the
// bytes it dropped when it returned an error. It aliases the buffer and is
// valid until the next Write.
func (d *Decoder) Last() []byte { return d.last }

// Next decodes the next frame from the buffered bytes. It returns
// ErrNeedMore when they hold no complete frame; ErrNoise, ErrBadLength,
// ErrMissingEnd or ErrBadCheck after dropping bytes (see Last). Call it in
// a loop until ErrNeedMore. The frame's Data aliases the buffer and is
// valid until the next Write.
func (d *Decoder) Next() (Frame, error) {
	b := d.buf[d.r:]
	if len(b) == 0 {
		return Frame{}, ErrNeedMore
	}
	if i := indexStart(b); i != 0 {
		if i < 0 {
			i = len(b)
		}
		return Frame{}, d.drop(i, ErrNoise)
	}
	if len(b) < 4 {
		return Frame{}, ErrNeedMore
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < MinLength || n > MaxLength {
		return Frame{}, d.resync(ErrBadLength)
	}
	total := n + Overhead
	if len(b) < total {
		return Frame{}, ErrNeedMore
	}
	if b[total-2] != markerHi || b[total-1] != markerLo {
		return Frame{}, d.resync(ErrMissingEnd)
	}
	end := 4 + n // index of the check byte
	if check(b[2:end]) != b[end] {
		return Frame{}, d.resync(ErrBadCheck)
	}
	f := Frame{
		Device:  b[4],
		Vendor:  b[5],
		Command: binary.BigEndian.Uint16(b[6:8]),
		Data:    b[8:end:end],
	}
	d.last = b[:total:total]
	d.r += total
	return f, nil
}

// Abandon gives up on a partial frame that will not be completed (the line
// went quiet in the middle of it): it drops its first byte and resynchronises
// like Next does on a malformed frame, and returns ErrTruncated. It returns
// nil if nothing is buffered. Call Next again afterwards: the dropped
// frame may have hidden a complete one.
func (d *Decoder) Abandon() error {
	if d.Buffered() == 0 {
		return nil
	}
	return d.resync(ErrTruncated)
}

// resync drops the first byte of a failed frame candidate and the bytes
// after it up to the next possible start marker.
func (d *Decoder) resync(why error) error {
	b := d.buf[d.r:]
	n := len(b)
	if i := indexStart(b[1:]); i >= 0 {
		n = 1 + i
	}
	return d.drop(n, why)
}

func (d *Decoder) drop(n int, why error) error {
	d.last = d.buf[d.r : d.r+n : d.r+n]
	d.r += n
	return why
}

// indexStart returns the index of the first possible start marker in b:
// 0x55 0xAA, or a 0x55 as the last byte (its 0xAA may be on its way). It
// returns -1 if there is none.
func indexStart(b []byte) int {
	if len(b) > 1 && b[0] == markerHi && b[1] == markerLo {
		return 0 // the common case: a frame follows a frame
	}
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], markerHi)
		if j < 0 {
			return -1
		}
		i += j
		if i+1 == len(b) || b[i+1] == markerLo {
			return i
		}
		i++
	}
	return -1
}
