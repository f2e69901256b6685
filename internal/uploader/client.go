package uploader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"taxi-agent/internal/outbox"
)

// Answer is an HTTP answer to a punch as it arrived: status, headers and
// body (at most 64 KiB of it).
type Answer struct {
	At     time.Time // when it arrived, on the client's clock
	Status int
	Header http.Header
	Body   []byte
}

// Client is the punch call on its own, without the drain loop: sign,
// POST with a few quick transport retries (each re-signed), verify and
// classify, exactly as the Uploader does it. taxi-gateway relays each
// terminal's punch through one.
type Client struct {
	pc   *punchClient
	wire *wireCounter
}

// NewClient builds a Client for cfg (BaseURL, CAFile, UserAgent,
// AttemptTimeout and the transport fields; the drain loop's fields are
// ignored), authenticating with auth.
func NewClient(cfg Config, auth Authenticator) (*Client, error) {
	if auth == nil {
		return nil, fmt.Errorf("new punch client: %w: authenticator is required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new punch client: %w", err)
	}
	wc := &wireCounter{}
	hc, err := newHTTPClient(cfg, wc, auth)
	if err != nil {
		return nil, fmt.Errorf("new punch client: %w", err)
	}
	return &Client{pc: newPunchClient(cfg, auth, hc, randFloat), wire: wc}, nil
}

// Send sends ev once and returns the answer as it arrived (Status 0 when
// none did) and nil when it is a verified 2xx, or the classified failure.
// ctx bounds the whole call, quick retries included.
func (c *Client) Send(ctx context.Context, ev outbox.Event) (Answer, *DeliveryError) {
	return c.pc.exchange(ctx, ev)
}

// URL is the punch URL the client posts to.
func (c *Client) URL() string { return c.pc.url }

// CloseIdleConnections closes the kept-alive connections.
func (c *Client) CloseIdleConnections() { c.pc.http.HTTPClient.CloseIdleConnections() }

// LastAnswer is the last answer received; ok is false before any.
func (c *Client) LastAnswer() (Answer, bool) {
	a := c.pc.last.Load()
	if a == nil {
		return Answer{}, false
	}
	return *a, true
}

// RetryAfter is a 429's or 503's Retry-After, parsed as the client does.
func (c *Client) RetryAfter(a Answer) (time.Duration, bool) {
	return c.pc.retryAfter(&http.Response{StatusCode: a.Status, Header: a.Header})
}

// randFloat is the jitter source of a Client: math/rand/v2's global one.
func randFloat() float64 { return rand.Float64() }
