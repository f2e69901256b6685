package gateway

import (
	"context"
	"math"
	"sync"
	"time"
)

// Queue is the fair queue in front of the rate: one FIFO lane per
// terminal, served round-robin, so that a terminal with a long backlog
// gets one turn with every other waiting terminal instead of starving
// them. A punch waits at most maxWait for its turn.
//
// The rate itself is taken on the wire (see wireGate): a punch released
// by the queue takes its token from the Limiter in the write of its
// request to WeChat Pay, so that neither a slow dial or handshake nor a
// late goroutine can bunch punches up at WeChat Pay. The queue releases at most Ahead punches that have not yet
// taken their token; each frees its place as it takes it, so the queue is
// drained at the rate and in round-robin order.
type Queue struct {
	ahead   chan struct{}
	rate    float64
	maxWait time.Duration
	now     func() time.Time

	mu     sync.Mutex
	lanes  map[string]*lane
	ring   []*lane // lanes with waiting tickets, in service order
	next   int     // index in ring of the lane served next
	depth  int
	wake   chan struct{}
	back   time.Time   // the latest return slot handed out with a 429
	served []time.Time // ring of the last release times, for the rate actually served
	nserve int
}

type lane struct {
	key     string
	tickets []*ticket
}

type ticket struct {
	ready    chan struct{}
	released bool
}

// Ahead is how many released punches may be on their way to the wire
// without their token: enough to hide a dial to WeChat Pay, few enough to
// keep the round-robin order.
const Ahead = 8

// NewQueue is a queue in front of a rate of perSecond punches a second;
// maxWait bounds a punch's wait.
func NewQueue(perSecond float64, maxWait time.Duration) *Queue {
	return &Queue{
		ahead: make(chan struct{}, Ahead), rate: perSecond, maxWait: maxWait, now: time.Now,
		lanes: map[string]*lane{}, wake: make(chan struct{}, 1),
	}
}

// Run releases punches until ctx ends, one per free place ahead, in
// round-robin order across terminals.
func (q *Queue) Run(ctx context.Context) error {
	for {
		select {
		case q.ahead <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		for !q.releaseNext() {
			select {
			case <-ctx.Done():
				return nil
			case <-q.wake:
			}
		}
	}
}

// Wait queues a punch of terminal key and blocks until it is released
// (nil), ctx ends (its error), or maxWait passes: then the punch leaves
// the queue and Wait returns ErrQueueTimeout with the Retry-After to
// answer, sized to the queue ahead and spread one slot apart from every
// other punch told to come back. A released punch must call done once it
// has taken its token, or once it will not.
func (q *Queue) Wait(ctx context.Context, key string) (done func(), retryAfter time.Duration, err error) {
	t := &ticket{ready: make(chan struct{})}
	q.push(key, t)
	timer := time.NewTimer(q.maxWait)
	defer timer.Stop()
	select {
	case <-t.ready:
		return q.doneFunc(), 0, nil
	case <-timer.C:
		if ra, ok := q.abandon(key, t); ok {
			return nil, ra, ErrQueueTimeout
		}
		return q.doneFunc(), 0, nil // released meanwhile
	case <-ctx.Done():
		if _, ok := q.abandon(key, t); ok {
			return nil, 0, ctx.Err()
		}
		return q.doneFunc(), 0, nil
	}
}

// doneFunc frees one place ahead, once.
func (q *Queue) doneFunc() func() {
	var once sync.Once
	return func() { once.Do(func() { <-q.ahead }) }
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

// releaseNext releases the oldest ticket of the next lane in the round,
// and reports false when the queue is empty.
func (q *Queue) releaseNext() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ring) == 0 {
		return false
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	l := q.ring[q.next]
	t := l.tickets[0]
	l.tickets[0] = nil
	l.tickets = l.tickets[1:]
	q.depth--
	t.released = true
	close(t.ready)
	if len(l.tickets) == 0 {
		q.dropLane(q.next)
	} else {
		q.next++
	}
	return true
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
//
// The slots are sized to the configured rate, not to the rate lately
// served: a start slowed by a thousand TLS handshakes once measured 8
// punches a second and sent the fleet away for three minutes, with the
// gateway idle meanwhile. A terminal that comes back too early costs one
// more 429; one that comes back too late costs the drain. Replicas that
// share the limit each size to the whole rate, so their terminals come
// back early rather than late.
func (q *Queue) comeBack() time.Duration {
	now := q.now()
	slot := time.Duration(float64(time.Second) / q.rate) // between two slots
	at := now.Add(time.Duration(q.depth) * slot)
	if q.back.After(at) {
		at = q.back
	}
	q.back = at.Add(slot)
	secs := math.Ceil(at.Sub(now).Seconds())
	return time.Duration(max(secs, 1)) * time.Second
}
