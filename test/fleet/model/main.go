// Command model is an event-level model of issue 9's fleet simulation, to
// sweep pacing laws that TestFleet (real TLS, signing, outboxes; minutes a
// run) is too slow to sweep. N terminals, each with a backlog, are woken
// at once against a token bucket that admits R requests a second (burst R)
// and answers the rest 429 with Retry-After: 1, as test/fleet's does. Each
// request is answered 50-150 ms later. Nothing else is modelled: no TLS,
// no CPU, no outbox, only when each terminal sends. The figures are those
// of TestFleet: the peak request rate (429s included) over sliding windows
// that hold 100 requests at R and start after the first 10 s, and the time
// until the last accepted request, against the ideal N·backlog/R.
//
// Two laws:
//
//   - current: the uploader's (internal/uploader/pace.go, mirrored here):
//     the pace ×4 per 429 from 1 s up to a minute (-ceiling), halving
//     every 20 s; a 429
//     retried after Retry-After plus a uniform share of the pace; after a
//     delivery the next event waits 0.5-1.5 × the pace.
//   - oracle: a terminal told N and R in advance. After its first answer
//     it picks a random phase in one interval N/(ρ·R), then sends every
//     interval (± -jitter). No terminal can know more without the server
//     telling it, so what the oracle misses, any law misses that does not
//     coordinate the terminals' phases.
//
// Usage:
//
//	go run ./test/fleet/model -law oracle -rho 0.8 -n 2000 -rate 100 -start 4s
package main

import (
	"container/heap"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"time"
)

const settle = 10 // s; the peak is measured after this

type spec struct {
	terminals, backlog int
	rate               float64 // R, requests per second; the bucket holds R
	start              float64 // s; first requests spread uniformly over it
	law                string
	ceiling            float64 // current: s
	rho, jitter        float64 // oracle
}

// law decides when a terminal sends next.
type law interface {
	// next is the wait in seconds after an answer at now (ok: accepted;
	// else 429 with Retry-After ra), for a uniform r in [0, 1).
	next(now float64, ok bool, ra, r float64) float64
}

// current mirrors internal/uploader/pace.go.
type current struct{ d, at, ceiling float64 }

const (
	floor    = 1.0 // BackoffMin
	factor   = 4.0
	halfLife = 20.0
)

func (p *current) decayed(now float64) float64 {
	return p.d * math.Exp2(-(now-p.at)/halfLife)
}

func (p *current) next(now float64, ok bool, ra, r float64) float64 {
	if ok {
		if d := p.decayed(now); d >= floor {
			return (0.5 + r) * d
		}
		return 0
	}
	p.d = min(max(p.decayed(now)*factor, floor), p.ceiling)
	p.at = now
	return ra + (1-r)*p.d
}

// oracle knows its fair interval.
type oracle struct {
	interval, jitter float64
	phased           bool
}

func (p *oracle) next(now float64, ok bool, ra, r float64) float64 {
	if !p.phased {
		p.phased = true
		return r * p.interval
	}
	return p.interval * (1 - p.jitter + 2*p.jitter*r)
}

type event struct {
	at     float64
	term   int
	answer bool // else a send
	ok     bool
}

type queue []event

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(event)) }
func (q *queue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

type figures struct {
	drained, peak       float64 // × ideal, × R
	requests, throttled int
}

// run simulates one fleet with the given seed.
func run(s spec, seed uint64) figures {
	rng := rand.New(rand.NewPCG(seed, 0x7a71))
	laws := make([]law, s.terminals)
	left := make([]int, s.terminals)
	q := &queue{}
	for i := range laws {
		switch s.law {
		case "oracle":
			laws[i] = &oracle{interval: float64(s.terminals) / (s.rho * s.rate), jitter: s.jitter}
		default:
			laws[i] = &current{ceiling: s.ceiling}
		}
		left[i] = s.backlog
		heap.Push(q, event{at: rng.Float64() * s.start, term: i})
	}
	tokens, last, drained := s.rate, 0.0, 0.0
	var sends []float64
	var f figures
	for q.Len() > 0 {
		e := heap.Pop(q).(event)
		if !e.answer {
			tokens = min(s.rate, tokens+(e.at-last)*s.rate)
			last = e.at
			ok := tokens >= 1
			if ok {
				tokens--
				drained = e.at
			} else {
				f.throttled++
			}
			sends = append(sends, e.at)
			heap.Push(q, event{at: e.at + 0.05 + 0.1*rng.Float64(), term: e.term, answer: true, ok: ok})
			continue
		}
		if e.ok {
			if left[e.term]--; left[e.term] == 0 {
				continue
			}
		}
		wait := laws[e.term].next(e.at, e.ok, 1, rng.Float64())
		heap.Push(q, event{at: e.at + wait, term: e.term})
	}
	f.requests = len(sends)
	f.drained = drained / (float64(s.terminals*s.backlog) / s.rate)
	f.peak = peak(sends, 100/s.rate) / s.rate
	return f
}

// peak is the highest rate over sliding windows that start at a request
// after settle and end before the last request (test/fleet's measure).
func peak(at []float64, window float64) float64 {
	slices.Sort(at)
	best, j := 0.0, 0
	for i := range at {
		if at[i] < settle {
			continue
		}
		if at[i]+window > at[len(at)-1] {
			break
		}
		for j < len(at) && at[j] < at[i]+window {
			j++
		}
		best = max(best, float64(j-i)/window)
	}
	return best
}

func main() {
	var s spec
	flag.IntVar(&s.terminals, "n", 200, "terminals")
	flag.IntVar(&s.backlog, "backlog", 5, "events queued per terminal")
	flag.Float64Var(&s.rate, "rate", 10, "R: requests per second the endpoint admits")
	start := flag.Duration("start", 2600*time.Millisecond, "the first requests spread over this (TestFleet: 2.6s reduced, 2-6s full)")
	flag.StringVar(&s.law, "law", "current", "current or oracle")
	ceiling := flag.Duration("ceiling", time.Minute, "current: the pace's ceiling (the uploader's: a minute; before: BackoffMax, 5m)")
	flag.Float64Var(&s.rho, "rho", 0.8, "oracle: the share of R the fleet aims to offer")
	flag.Float64Var(&s.jitter, "jitter", 0.1, "oracle: ± share of the interval each wait varies")
	seeds := flag.Int("seeds", 5, "runs, one seed each")
	flag.Parse()
	if flag.NArg() > 0 || s.terminals < 1 || s.backlog < 1 || s.rate <= 0 || s.rho <= 0 || (s.law != "current" && s.law != "oracle") {
		flag.Usage()
		os.Exit(2)
	}
	s.start, s.ceiling = start.Seconds(), ceiling.Seconds()
	fmt.Printf("%s: %d terminals × %d, R = %g/s", s.law, s.terminals, s.backlog, s.rate)
	if s.law == "current" {
		fmt.Printf(", pace ceiling %s", *ceiling)
	}
	if s.law == "oracle" {
		fmt.Printf(", offering %.2f × R, jitter ±%.0f%%", s.rho, 100*s.jitter)
	}
	fmt.Println()
	for seed := range *seeds {
		f := run(s, uint64(seed))
		n := float64(s.terminals * s.backlog)
		fmt.Printf("  drained %.2f × ideal (aim ≤ 1.5), peak %.2f × R (aim ≤ 1.1), %.2f requests and %.2f 429s per event\n",
			f.drained, f.peak, float64(f.requests)/n, float64(f.throttled)/n)
	}
}
