package gateway

import (
	"context"
	"math"
	"sync"
	"time"
)

// Queue is the fair queue in front of the Limiter: one FIFO lane per
// terminal, served round-robin, so that a terminal with a long backlog
// gets one slot in turn with every other waiting terminal instead of
// starving them. A punch waits at most maxWait for its slot.
type Queue struct {
	lim     Limiter
	rate    float64
	maxWait time.Duration
	now     func() time.Time

	mu     sync.Mutex
	lanes  map[string]*lane
	ring   []*lane // lanes with waiting tickets, in service order
	next   int     // index in ring of the lane served next
	depth  int
	wake   chan struct{}
	back   time.Time // the latest return slot handed out with a 429
	served uint64
}

type lane struct {
	key     string
	tickets []*ticket
}

type ticket struct {
	ready    chan struct{}
	released bool
}

// NewQueue is a queue feeding lim, which admits perSecond punches a
// second; maxWait bounds a punch's wait.
func NewQueue(lim Limiter, perSecond float64, maxWait time.Duration) *Queue {
	return &Queue{
		lim: lim, rate: perSecond, maxWait: maxWait, now: time.Now,
		lanes: map[string]*lane{}, wake: make(chan struct{}, 1),
	}
}

// Run hands out slots until ctx ends: it takes a slot from the Limiter,
// then releases the next terminal's oldest punch in round-robin order. A
// slot that finds the queue empty (every waiter gave up meanwhile) is not
// kept for later: keeping it would let two punches through closer than
// one slot apart.
func (q *Queue) Run(ctx context.Context) error {
	for {
		if q.Depth() == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-q.wake:
				continue
			}
		}
		if err := q.lim.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		q.releaseNext()
	}
}

// Wait queues a punch of terminal key and blocks until it gets a slot
// (nil), ctx ends (its error), or maxWait passes: then the punch leaves the
// queue and Wait returns ErrQueueTimeout with the Retry-After to answer,
// sized to the queue ahead and spread one slot apart from every other
// punch told to come back.
func (q *Queue) Wait(ctx context.Context, key string) (retryAfter time.Duration, err error) {
	t := &ticket{ready: make(chan struct{})}
	q.push(key, t)
	timer := time.NewTimer(q.maxWait)
	defer timer.Stop()
	select {
	case <-t.ready:
		return 0, nil
	case <-timer.C:
		if ra, ok := q.abandon(key, t); ok {
			return ra, ErrQueueTimeout
		}
		return 0, nil // released meanwhile
	case <-ctx.Done():
		if _, ok := q.abandon(key, t); ok {
			return 0, ctx.Err()
		}
		return 0, nil
	}
}

// Depth is the number of punches waiting.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.depth
}

func (q *Queue) push(key string, t *ticket) {
	q.mu.Lock()
	l := q.lanes[key]
	if l == nil {
		l = &lane{key: key}
		q.lanes[key] = l
	}
	if len(l.tickets) == 0 {
		q.ring = append(q.ring, l) // joins the round at its end
	}
	l.tickets = append(l.tickets, t)
	q.depth++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// releaseNext releases the oldest ticket of the next lane in the round.
func (q *Queue) releaseNext() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ring) == 0 {
		return
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	l := q.ring[q.next]
	t := l.tickets[0]
	l.tickets[0] = nil
	l.tickets = l.tickets[1:]
	q.depth--
	q.served++
	t.released = true
	close(t.ready)
	if len(l.tickets) == 0 {
		q.dropLane(q.next)
	} else {
		q.next++
	}
}

// dropLane removes ring[i], keeping the round's order.
func (q *Queue) dropLane(i int) {
	l := q.ring[i]
	q.ring = append(q.ring[:i], q.ring[i+1:]...)
	if i < q.next {
		q.next--
	}
	delete(q.lanes, l.key)
	l.tickets = nil
}

// abandon takes t out of the queue if it is still waiting and returns the
// Retry-After for it.
func (q *Queue) abandon(key string, t *ticket) (time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.released {
		return 0, false
	}
	l := q.lanes[key]
	for i, x := range l.tickets {
		if x == t {
			l.tickets = append(l.tickets[:i], l.tickets[i+1:]...)
			break
		}
	}
	q.depth--
	if len(l.tickets) == 0 {
		for i, x := range q.ring {
			if x == l {
				q.dropLane(i)
				break
			}
		}
	}
	return q.comeBack(), true
}

// comeBack hands out the next return slot: no earlier than the time the
// queue ahead takes to drain, and one slot after the previous one handed
// out, so that terminals told to come back return at the rate, not in a
// herd. Retry-After is whole seconds: it is rounded up.
func (q *Queue) comeBack() time.Duration {
	now := q.now()
	slot := time.Duration(slotSeconds(q.rate) * float64(time.Second))
	at := now.Add(time.Duration(q.depth) * slot)
	if q.back.After(at) {
		at = q.back
	}
	q.back = at.Add(slot)
	secs := math.Ceil(at.Sub(now).Seconds())
	return time.Duration(max(secs, 1)) * time.Second
}
