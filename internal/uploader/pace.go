package uploader

import (
	"math"
	"time"
)

// Throttling model. A 429 says the endpoint is saturated now, by the
// whole fleet; a terminal cannot know how many others share the limit, so
// it learns a pace, the spacing between its own requests that the
// endpoint tolerates, from the 429s it gets:
//
//   - each 429 multiplies the pace by paceFactor (at least BackoffMin, at
//     most paceCeiling or BackoffMax if shorter), and the retry waits the
//     capped Retry-After plus a uniform share of the pace: terminals told
//     the same Retry-After come back spread over the pace, not in step;
//   - after a delivery the next event waits a uniform 0.5–1.5 × the pace,
//     so N terminals at pace p offer about N/p requests a second, and
//     converge on the p at which that is what the endpoint admits;
//   - the pace halves every paceHalfLife without a 429, and is 0 (no
//     spacing) below BackoffMin, so a terminal that overshot, or whose
//     fleet has drained, speeds up again within a few half-lives.
//
// The pace is in memory only: it describes the endpoint now, not the
// event; an outage's failures (which raise the record's Attempts) do not
// slow the recovery from throttling, and a restart forgets it.
//
// The ceiling is a minute, not BackoffMax's five: a terminal that
// collected a few 429s in a row would otherwise wait minutes while the
// endpoint, the rest of the fleet drained, sits idle. A fleet that needs
// more than a minute between one terminal's requests pays in 429s instead.
// test/fleet/FIGURES.md has the measurements behind both choices.
const (
	paceFactor   = 4
	paceHalfLife = 20 * time.Second
	paceCeiling  = time.Minute
)

// pace is the uploader's throttling state; touched only by Run's goroutine.
type pace struct {
	floor, ceiling time.Duration
	d              time.Duration // the pace as set at `at`
	at             time.Time
}

// newPace is the pace of a drain loop whose backoff runs from lo to hi.
func newPace(lo, hi time.Duration) pace {
	return pace{floor: lo, ceiling: max(min(hi, paceCeiling), lo)}
}

// decayed is the pace as set, halved every paceHalfLife since.
func (p *pace) decayed(now time.Time) time.Duration {
	if p.d <= 0 {
		return 0
	}
	elapsed := max(now.Sub(p.at), 0) // a clock stepped back does not raise it
	return time.Duration(float64(p.d) * math.Exp2(-elapsed.Seconds()/paceHalfLife.Seconds()))
}

// current is the pace at now: 0 once it has decayed below the floor.
func (p *pace) current(now time.Time) time.Duration {
	if d := p.decayed(now); d >= p.floor {
		return d
	}
	return 0
}

// throttled notes a 429 at `at` and returns the raised pace.
func (p *pace) throttled(at time.Time) time.Duration {
	d := min(max(p.decayed(at)*paceFactor, p.floor), p.ceiling)
	p.d, p.at = d, at
	return d
}

// spacing is how long after a delivery at `at` the next event waits, for
// a uniform r in [0, 1): 0 when not throttled lately.
func (p *pace) spacing(at time.Time, r float64) time.Duration {
	return time.Duration((0.5 + r) * float64(p.current(at)))
}
