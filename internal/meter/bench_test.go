package meter_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
)

// benchStream is realistic line traffic: per shift a sign-in, 20
// heartbeats, a trip record, a sign-out, with a few bytes of noise.
func benchStream(tb testing.TB) (stream []byte, frames int) {
	tb.Helper()
	trip := meter.Frame{Device: 2, Command: meter.CmdTrip, Data: dataOf(tb, hexTrip)}
	for i := range 20 {
		s := metersim.Shift{Driver: fmt.Sprintf("4210831988%08d", i), Trips: uint32(i), At: shiftStart}
		stream = meter.AppendFrame(stream, s.SignInFrame())
		for range 20 {
			stream = meter.AppendFrame(stream, s.HeartbeatFrame(meter.StateSignedIn))
		}
		stream = meter.AppendFrame(stream, trip)
		stream = append(stream, 0x00, 0xFF, 0x55, 0x13)
		stream = meter.AppendFrame(stream, s.SignOutFrame(false))
		frames += 23
	}
	return stream, frames
}

// decodeChunks feeds stream in chunks of n bytes and returns the frames found.
func decodeChunks(d *meter.Decoder, stream []byte, n int) int {
	frames := 0
	for p := stream; len(p) > 0; {
		k := min(n, len(p))
		d.Write(p[:k])
		p = p[k:]
		for {
			_, err := d.Next()
			if err == meter.ErrNeedMore {
				break
			}
			if err == nil {
				frames++
			}
		}
	}
	return frames
}

// floor is the least work any decoder does: copy the bytes in and XOR
// every one of them, eight at a time.
func floor(buf, stream []byte) byte {
	n := copy(buf, stream)
	var w uint64
	p := buf[:n]
	for ; len(p) >= 8; p = p[8:] {
		w ^= binary.LittleEndian.Uint64(p)
	}
	for _, c := range p {
		w ^= uint64(c)
	}
	return byte(w ^ w>>8 ^ w>>16 ^ w>>24 ^ w>>32 ^ w>>40 ^ w>>48 ^ w>>56)
}

var sink byte

// BenchmarkDecode decodes the stream in UART-sized reads and reports
// MB/s, allocations per frame, and the time per byte as a multiple of a
// floor (copy + XOR of every byte) measured in the same run.
func BenchmarkDecode(b *testing.B) {
	stream, frames := benchStream(b)
	buf := make([]byte, len(stream))
	const floorRounds = 2000
	start := time.Now()
	for range floorRounds {
		sink ^= floor(buf, stream)
	}
	floorPerByte := float64(time.Since(start)) / float64(floorRounds*len(stream))

	for _, n := range []int{32, 512, 4096} {
		b.Run(fmt.Sprintf("read=%d", n), func(b *testing.B) {
			var d meter.Decoder
			decodeChunks(&d, stream, n) // grow the buffer once
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.SetBytes(int64(len(stream)))
			b.ResetTimer()
			for b.Loop() {
				if got := decodeChunks(&d, stream, n); got != frames {
					b.Fatalf("decoded %d frames, want %d", got, frames)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*frames), "allocs/frame")
			b.ReportMetric(float64(b.Elapsed())/float64(b.N*frames), "ns/frame")
			b.ReportMetric(float64(b.Elapsed())/float64(b.N*len(stream))/floorPerByte, "x-floor")
		})
	}
}

// TestDecodeZeroAlloc: once its buffer has grown, the decoder allocates
// nothing per frame.
func TestDecodeZeroAlloc(t *testing.T) {
	stream, frames := benchStream(t)
	var d meter.Decoder
	decodeChunks(&d, stream, 64)
	allocs := testing.AllocsPerRun(20, func() {
		if got := decodeChunks(&d, stream, 64); got != frames {
			t.Fatalf("decoded %d frames, want %d", got, frames)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per stream of %d frames, want 0", allocs, frames)
	}
}
