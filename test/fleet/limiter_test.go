package fleet

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"taxi-agent/internal/punchsim"
)

// tokenBucket is the fake endpoint's rate limit, a punchsim Faults func:
// it admits Rate requests per simulated second with bursts of Burst, and
// answers the rest 429 FREQUENCY_LIMITED with Retry-After. It keeps the
// simulated time and outcome of every request it saw.
type tokenBucket struct {
	rate, burst float64
	now         func() time.Time

	mu       sync.Mutex
	tokens   float64
	last     time.Time
	requests []request
}

// request is one request the limiter saw.
type request struct {
	at        time.Time // simulated
	plate     string    // the terminal's
	throttled bool
}

func newTokenBucket(rate, burst float64, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: burst, now: now, tokens: burst, last: now()}
}

// decide is the punchsim Faults func.
func (b *tokenBucket) decide(x punchsim.Exchange) punchsim.Fault {
	return b.decideAt(x, time.Time{})
}

// decideAt decides x as if it came at `at` (zero: now), for requests
// held and let through together (firstRequests).
func (b *tokenBucket) decideAt(x punchsim.Exchange, at time.Time) punchsim.Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := at
	if now.IsZero() {
		now = b.now()
	}
	b.tokens = min(b.burst, b.tokens+max(now.Sub(b.last), 0).Seconds()*b.rate)
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.requests = append(b.requests, request{at: now, plate: x.Punch.PlateNumber})
		return punchsim.Fault{}
	}
	b.requests = append(b.requests, request{at: now, plate: x.Punch.PlateNumber, throttled: true})
	return punchsim.Fault{Kind: punchsim.RateLimited, RetryAfter: strconv.Itoa(b.retryAfter())}
}

// retryAfter is what a plain token bucket can tell a client it turns
// away: the whole seconds until its next token.
func (b *tokenBucket) retryAfter() int {
	return max(1, int(math.Ceil((1-b.tokens)/b.rate)))
}

// seen returns the requests so far.
func (b *tokenBucket) seen() []request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]request(nil), b.requests...)
}

// reset fills the bucket and forgets the requests seen: the network has
// just come back.
func (b *tokenBucket) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens, b.last, b.requests = b.burst, b.now(), nil
}

// gatherTimeout bounds the wait for a whole fleet's first requests
// (fleetSpec.Gather): 100 terminals' TLS handshakes and RSA signatures,
// with the race detector, on two cores shared with other suites took up
// to 5 s; the bound is for a fleet that never sends.
const gatherTimeout = time.Minute

// firstRequests holds requests until n terminals have each sent one (or
// opened gives up after a timeout); every request after that passes at
// once.
type firstRequests struct {
	n       int
	timeout time.Duration
	now     func() time.Time
	open    chan struct{}

	mu       sync.Mutex
	plates   map[string]bool
	isOpen   bool
	openedAt time.Time
	timedOut bool
}

func newFirstRequests(n int, timeout time.Duration, now func() time.Time) *firstRequests {
	return &firstRequests{n: n, timeout: timeout, now: now, open: make(chan struct{}), plates: map[string]bool{}}
}

// wait notes plate's request and returns once all n terminals have sent
// one, or once opened gave up waiting. A request it held is given the
// instant the requests were let through, to be decided at, however late
// this machine runs its handler; one that came after gets zero.
func (g *firstRequests) wait(plate string) time.Time {
	g.mu.Lock()
	held := !g.isOpen
	if held {
		g.plates[plate] = true
		if len(g.plates) == g.n {
			g.releaseLocked(false)
		}
	}
	g.mu.Unlock()
	<-g.open
	if !held {
		return time.Time{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openedAt
}

func (g *firstRequests) releaseLocked(timedOut bool) {
	if g.isOpen {
		return
	}
	g.isOpen, g.openedAt, g.timedOut = true, g.now(), timedOut
	close(g.open)
}

// opened waits, from the fleet's start, until the held requests were let
// through; after the timeout it lets them through itself and says how
// many terminals had sent.
func (g *firstRequests) opened() error {
	select {
	case <-g.open:
	case <-time.After(g.timeout):
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.isOpen {
		g.releaseLocked(true)
	}
	if g.timedOut {
		return fmt.Errorf("only %d of %d terminals sent a first request within %s", len(g.plates), g.n, g.timeout)
	}
	return nil
}
