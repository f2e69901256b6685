package uploader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"taxi-agent/internal/punch"
)

// Client is one punch exchange without the drain loop: sign (the
// Authenticator), POST with the transport's quick retries, verify the
// answer and classify it (wechatpay.Classify) into nil or a
// *DeliveryError. The drain loop uses the same code; a fleet gateway that
// relays terminals' punches uses a Client of its own, with the schedule,
// the systemic-rejection streak and the outbox left to its callers.
type Client struct {
	pc   *punchClient
	wire *wireCounter
}

// Answer is an HTTP answer to a punch as it arrived: status, headers and
// body (at most 64 KiB of it).
type Answer struct {
	At     time.Time // when it arrived, on the client's clock
	Status int
	Header http.Header
	Body   []byte
}

// NewClient builds a Client from cfg's BaseURL, CAFile, UserAgent,
// AttemptTimeout, MaxIdleConns and transport retries; the schedule fields
// are unused.
func NewClient(cfg Config, auth Authenticator) (*Client, error) {
	if auth == nil {
		return nil, fmt.Errorf("new client: %w: an authenticator is required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	wc := &wireCounter{}
	hc, err := newHTTPClient(cfg, wc, auth)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	return &Client{pc: newPunchClient(cfg, auth, hc, rand.Float64), wire: wc}, nil
}

// Send delivers ev once and returns nil when WeChat Pay's answer is a
// verified 2xx; otherwise the *DeliveryError says what kind of failure it
// was (Retryable, Held, Rejected) with WeChat Pay's status, code, message
// and Request-ID.
func (c *Client) Send(ctx context.Context, ev punch.Event) *DeliveryError {
	return c.pc.send(ctx, ev)
}

// Exchange is Send that also returns the answer as it arrived (Status 0
// when none did), for a relay that passes WeChat Pay's own status and body
// on. ctx bounds the whole call, quick retries included.
func (c *Client) Exchange(ctx context.Context, ev punch.Event) (Answer, *DeliveryError) {
	return c.pc.exchange(ctx, ev)
}

// URL is the punch URL the client posts to.
func (c *Client) URL() string { return c.pc.url }

// CloseIdleConnections closes the kept-alive connections.
func (c *Client) CloseIdleConnections() { c.pc.http.HTTPClient.CloseIdleConnections() }
