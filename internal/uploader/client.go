package uploader

import (
	"context"
	"fmt"
	"math/rand/v2"

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

// NewClient builds a Client from cfg's BaseURL, CAFile, UserAgent,
// AttemptTimeout and transport retries; the schedule fields are unused.
func NewClient(cfg Config, auth Authenticator) (*Client, error) {
	if auth == nil {
		return nil, fmt.Errorf("new client: %w: an authenticator is required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	wc := &wireCounter{}
	hc, err := newHTTPClient(cfg, wc)
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

// CloseIdleConnections closes the kept-alive connections.
func (c *Client) CloseIdleConnections() { c.pc.http.HTTPClient.CloseIdleConnections() }
