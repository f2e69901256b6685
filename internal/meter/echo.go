package meter

import (
	"bytes"
	"hash/maphash"
	"time"
)

// Defaults of the link's guards against echoing lines.
const (
	// DefaultEchoWindow is how long after sending a frame the same bytes
	// coming back are taken for its echo. An RS-485 adapter that keeps its
	// receiver on echoes within a few byte times; the window also covers a
	// slow USB adapter's buffering.
	DefaultEchoWindow = 2 * time.Second
	// DefaultUnreadableWindow is how long the link remembers an unreadable
	// frame it answered: the same bytes again within it get no answer,
	// and a burst of unreadable frames within it is logged once.
	DefaultUnreadableWindow = time.Minute
)

// sentFrames remembers the last frames the link sent, to recognise them
// when an echoing line hands them back.
type sentFrames struct {
	window time.Duration
	frames [8]struct {
		at   time.Time
		wire []byte
	}
	next int
}

func (s *sentFrames) add(now time.Time, wire []byte) {
	e := &s.frames[s.next]
	e.at, e.wire = now, append(e.wire[:0], wire...)
	s.next = (s.next + 1) % len(s.frames)
}

// echo reports whether raw is one of the frames sent within the window
// before now, and forgets that send: each frame echoes once.
func (s *sentFrames) echo(now time.Time, raw []byte) bool {
	for i := range s.frames {
		e := &s.frames[i]
		if !e.at.IsZero() && now.Sub(e.at) <= s.window && bytes.Equal(e.wire, raw) {
			e.at = time.Time{}
			return true
		}
	}
	return false
}

// answeredOnce remembers which unreadable frames were answered, so that
// the same bytes are answered at most once per window: a line that hands
// the answer back cannot start a conversation.
type answeredOnce struct {
	window time.Duration
	seed   maphash.Seed
	seen   map[uint64]time.Time
}

// first reports whether raw has not been answered within the window, and
// notes it as answered now.
func (a *answeredOnce) first(now time.Time, raw []byte) bool {
	if a.seen == nil {
		a.seed, a.seen = maphash.MakeSeed(), map[uint64]time.Time{}
	}
	for k, at := range a.seen {
		if now.Sub(at) > a.window {
			delete(a.seen, k)
		}
	}
	h := maphash.Bytes(a.seed, raw)
	if at, ok := a.seen[h]; ok && now.Sub(at) <= a.window {
		return false
	}
	if len(a.seen) >= 64 { // a flood of distinct bad frames: stay bounded, answer none
		return false
	}
	a.seen[h] = now
	return true
}

// burst logs a repeated condition at most once per window: the first
// occurrence is logged, the others within the window are counted and
// reported with the next line.
type burst struct {
	window     time.Duration
	start      time.Time
	suppressed uint64
}

// note records one occurrence at now. It returns log true when this one
// is to be logged, with the number of occurrences left unlogged before it.
func (b *burst) note(now time.Time) (log bool, unlogged uint64) {
	if !b.start.IsZero() && now.Sub(b.start) <= b.window {
		b.suppressed++
		return false, 0
	}
	n := b.suppressed
	b.start, b.suppressed = now, 0
	return true, n
}
