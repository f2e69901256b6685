package meter_test

import (
	"bytes"
	"testing"

	"taxi-agent/internal/meter"
)

// FuzzDecode feeds arbitrary bytes to the decoder, whole and in pieces.
// It checks that the decoder never panics and always stops, that every
// byte is accounted for (frame, dropped or still buffered), that every
// frame re-encodes to exactly its wire bytes, that the pieces find the same
// frames as the whole, and that a frame built from the input round-trips,
// also behind noise.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeVectors {
		f.Add(unhex(f, tc.in), uint8(1))
		f.Add(unhex(f, tc.in), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		whole, wholeDropped, wholeLeft := decodeStream(t, in, len(in)+1)
		pieces, piecesDropped, piecesLeft := decodeStream(t, in, int(piece%32)+1)
		if len(whole) != len(pieces) {
			t.Fatalf("whole found %d frames, pieces of %d found %d", len(whole), piece%32+1, len(pieces))
		}
		for i := range whole {
			if !bytes.Equal(whole[i], pieces[i]) {
				t.Fatalf("frame %d differs: %X vs %X", i, whole[i], pieces[i])
			}
		}
		if wholeDropped+wholeLeft != piecesDropped+piecesLeft {
			t.Fatalf("dropped+left %d whole, %d in pieces", wholeDropped+wholeLeft, piecesDropped+piecesLeft)
		}

		// Round trip: a frame made of the input encodes and decodes back,
		// also after noise that holds no 0x55.
		fr := meter.Frame{Command: 0x00E9}
		if len(in) >= 4 {
			fr = meter.Frame{Device: in[0], Vendor: in[1], Command: uint16(in[2])<<8 | uint16(in[3]), Data: in[4:min(len(in), 4+meter.MaxData)]}
		}
		wire := meter.AppendFrame(nil, fr)
		noise := bytes.ReplaceAll(in, []byte{0x55}, nil)
		for _, stream := range [][]byte{wire, append(noise, wire...)} {
			var d meter.Decoder
			d.Write(stream)
			var got []meter.Frame
			for {
				g, err := d.Next()
				if err == meter.ErrNeedMore {
					break
				}
				if err == nil {
					got = append(got, meter.Frame{Device: g.Device, Vendor: g.Vendor, Command: g.Command, Data: bytes.Clone(g.Data)})
				}
			}
			if len(got) != 1 || got[0].Device != fr.Device || got[0].Vendor != fr.Vendor ||
				got[0].Command != fr.Command || !bytes.Equal(got[0].Data, fr.Data) || d.Buffered() != 0 {
				t.Fatalf("round trip of %+v gave %+v (buffered %d)", fr, got, d.Buffered())
			}
		}
	})
}

// decodeStream decodes in fed in pieces of n bytes, then abandons what
// is left until nothing is. It returns the frames' wire bytes, the number
// of bytes dropped before the end, and the number abandoned at the end.
func decodeStream(t *testing.T, in []byte, n int) (frames [][]byte, dropped, left int) {
	var d meter.Decoder
	consume := func(abandoned *int) {
		for steps := 0; ; steps++ {
			if steps > 2*len(in)+2 {
				t.Fatal("decoder does not stop")
			}
			f, err := d.Next()
			switch err {
			case meter.ErrNeedMore:
				return
			case nil:
				if re := meter.AppendFrame(nil, f); !bytes.Equal(re, d.Last()) {
					t.Fatalf("frame %X re-encodes to %X", d.Last(), re)
				}
				frames = append(frames, bytes.Clone(d.Last()))
			case meter.ErrNoise, meter.ErrBadLength, meter.ErrMissingEnd, meter.ErrBadCheck:
				if len(d.Last()) == 0 {
					t.Fatalf("%v dropped nothing", err)
				}
				*abandoned += len(d.Last())
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
	}
	for p := in; len(p) > 0; {
		k := min(n, len(p))
		d.Write(p[:k])
		p = p[k:]
		consume(&dropped)
	}
	for d.Buffered() > 0 {
		before := d.Buffered()
		if err := d.Abandon(); err != meter.ErrTruncated {
			t.Fatalf("Abandon = %v", err)
		}
		left += len(d.Last())
		if d.Buffered() >= before {
			t.Fatal("Abandon dropped nothing")
		}
		consume(&left)
	}
	total := dropped + left
	for _, f := range frames {
		total += len(f)
	}
	if total != len(in) {
		t.Fatalf("accounted for %d of %d bytes", total, len(in))
	}
	return frames, dropped, left
}
