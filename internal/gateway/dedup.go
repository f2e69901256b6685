package gateway

import (
	"context"
	"sync"
	"time"
)

// DedupWindow is how long a delivered punch is remembered: a terminal
// whose answer was lost retries within its backoff, minutes at most.
const DedupWindow = time.Hour

// PunchKey identifies a punch across retries: plate, licence, type and
// event time.
type PunchKey struct {
	Plate, Licence, Type, Time string
}

// Verdict is the relay's answer to a terminal.
type Verdict struct {
	Status     int
	Body       []byte
	Header     map[string]string
	RetryAfter time.Duration
	Outcome    string // for metrics and logs
}

// dedup remembers punches delivered in the last DedupWindow and the ones
// in flight, so that a retry of a punch is never a second punch at WeChat
// Pay: a delivered one is answered 204 again, one in flight waits for the
// first attempt's verdict.
type dedup struct {
	now func() time.Time

	mu        sync.Mutex
	delivered map[PunchKey]time.Time
	order     []keyAt // delivery order, for expiry
	inflight  map[PunchKey]*flight
}

type keyAt struct {
	k  PunchKey
	at time.Time
}

type flight struct {
	done    chan struct{}
	verdict Verdict
}

func newDedup(now func() time.Time) *dedup {
	return &dedup{now: now, delivered: map[PunchKey]time.Time{}, inflight: map[PunchKey]*flight{}}
}

// begin reports whether k was delivered within the window (dup), or else
// claims it: leader is true for the first caller, who must call end; a
// later caller gets the flight to wait on.
func (d *dedup) begin(k PunchKey) (dup bool, f *flight, leader bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire()
	if _, ok := d.delivered[k]; ok {
		return true, nil, false
	}
	if f, ok := d.inflight[k]; ok {
		return false, f, false
	}
	f = &flight{done: make(chan struct{})}
	d.inflight[k] = f
	return false, f, true
}

// end records the leader's verdict, and the delivery when it is one.
func (d *dedup) end(k PunchKey, f *flight, v Verdict, delivered bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, k)
	if delivered {
		at := d.now()
		d.delivered[k] = at
		d.order = append(d.order, keyAt{k, at})
	}
	f.verdict = v
	close(f.done)
}

// follow waits for the flight's verdict.
func (f *flight) follow(ctx context.Context) (Verdict, error) {
	select {
	case <-f.done:
		return f.verdict, nil
	case <-ctx.Done():
		return Verdict{}, ctx.Err()
	}
}

// markDelivered records k as delivered (a shared store saw it delivered).
func (d *dedup) markDelivered(k PunchKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at := d.now()
	d.delivered[k] = at
	d.order = append(d.order, keyAt{k, at})
}

// expire forgets deliveries older than the window; d.mu is held.
func (d *dedup) expire() {
	cut := d.now().Add(-DedupWindow)
	n := 0
	for n < len(d.order) && d.order[n].at.Before(cut) {
		if at, ok := d.delivered[d.order[n].k]; ok && !at.After(d.order[n].at) {
			delete(d.delivered, d.order[n].k)
		}
		n++
	}
	if n > 0 {
		d.order = append(d.order[:0:0], d.order[n:]...)
	}
}
