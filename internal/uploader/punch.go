package uploader

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"taxi-agent/internal/backoff"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/wechatpay"
)

// PunchPath is the punch endpoint's path under the base URL.
const PunchPath = "/v3/taxi-invoice/attendance/punch"

// maxAnswer bounds how much of an answer body is read.
const maxAnswer = 64 << 10

// punchBody is the request body: exactly the API's five fields, whatever
// else punch.Event may grow.
type punchBody struct {
	PlateNumber   string `json:"plate_number"`
	DriverLicense string `json:"driver_license"`
	EventTime     string `json:"event_time"`
	EventType     string `json:"event_type"`
	RegionID      int64  `json:"region_id"`
}

func encodeBody(ev punch.Event) ([]byte, error) {
	b, err := json.Marshal(punchBody{
		PlateNumber: ev.PlateNumber, DriverLicense: ev.DriverLicense,
		EventTime: ev.EventTime, EventType: ev.Type, RegionID: ev.RegionID,
	})
	if err != nil {
		return nil, fmt.Errorf("encode punch: %w", err)
	}
	return b, nil
}

// signError marks a failure of the local signing step.
type signError struct{ err error }

func (e *signError) Error() string { return e.err.Error() }
func (e *signError) Unwrap() error { return e.err }

// punchClient sends one punch: sign, POST with a few quick transport
// retries (each re-signed), verify, classify.
type punchClient struct {
	url       string
	userAgent string
	auth      Authenticator
	http      *retryablehttp.Client
	now       func() time.Time
	retries   atomic.Uint64 // transport-level retries made
	last      atomic.Pointer[Answer]
}

func newPunchClient(cfg Config, auth Authenticator, hc *http.Client, jitter func() float64) *punchClient {
	c := &punchClient{
		url:       strings.TrimRight(cfg.BaseURL, "/") + PunchPath,
		userAgent: cfg.UserAgent,
		auth:      auth,
		now:       cfg.Now,
	}
	waitMax := cfg.TransportWaitMax
	c.http = &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       retryLog{cfg.Logger.With("component", "uploader.http")},
		RetryWaitMin: cfg.TransportWaitMin,
		RetryWaitMax: waitMax,
		RetryMax:     cfg.TransportRetries,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			return c.checkRetry(ctx, resp, err, waitMax)
		},
		Backoff: func(lo, hi time.Duration, n int, resp *http.Response) time.Duration {
			if resp != nil {
				if ra, ok := c.retryAfter(resp); ok {
					return min(ra, hi) // checkRetry let only short ones through
				}
			}
			return backoff.Policy{Min: lo, Max: hi}.Delay(n+1, jitter())
		},
		RequestLogHook: func(_ retryablehttp.Logger, _ *http.Request, n int) {
			if n > 0 {
				c.retries.Add(1)
			}
		},
		PrepareRetry: c.resign,
	}
	return c
}

// checkRetry decides on a quick retry inside one attempt: transport errors
// (not TLS verification), and 5xx but 501 unless the server asks for a
// longer wait than the transport may take; those go back to the drain
// loop, which persists its schedule. A 429 always goes back to the drain
// loop: retried at its Retry-After, a throttled fleet would come back in
// step; the loop spreads it over its pace.
func (c *punchClient) checkRetry(ctx context.Context, resp *http.Response, err error, waitMax time.Duration) (bool, error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if stopping(ctx) {
		return false, nil // shutting down: finish, do not start another try
	}
	if err != nil {
		var cve *tls.CertificateVerificationError
		var se *signError
		if errors.As(err, &cve) || errors.As(err, &se) {
			return false, nil
		}
		return true, nil
	}
	if wechatpay.Classify(resp.StatusCode, "", "") == wechatpay.ClassThrottled {
		return false, nil
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		if ra, ok := c.retryAfter(resp); ok && ra > waitMax {
			return false, nil
		}
		return true, nil
	}
	return false, nil
}

// resign signs a transport retry afresh: a new timestamp and nonce.
func (c *punchClient) resign(req *http.Request) error {
	rc, err := req.GetBody()
	if err != nil {
		return &signError{fmt.Errorf("rewind body: %w", err)}
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return &signError{fmt.Errorf("rewind body: %w", err)}
	}
	req.Header = req.Header.Clone() // the previous attempt's request shares the map
	if err := c.auth.Sign(req.Context(), req, body); err != nil {
		return &signError{err}
	}
	return nil
}

// send delivers ev once (with the transport's quick retries) and returns
// nil when the answer is a verified 2xx.
func (c *punchClient) send(ctx context.Context, ev punch.Event) *DeliveryError {
	_, derr := c.exchange(ctx, ev)
	return derr
}

// exchange is send that also returns the answer as it arrived (zero
// Status when none did), for a relay that passes it on.
func (c *punchClient) exchange(ctx context.Context, ev punch.Event) (Answer, *DeliveryError) {
	body, err := encodeBody(ev)
	if err != nil {
		return Answer{}, &DeliveryError{Kind: KindRejected, Err: err}
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		return Answer{}, &DeliveryError{Kind: KindHeld, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if err := c.auth.Sign(ctx, req.Request, body); err != nil {
		return Answer{}, &DeliveryError{Kind: KindHeld, Err: err}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return Answer{}, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Answer{}, c.transportError(ctx, fmt.Errorf("read answer: %w", err))
	}
	a := Answer{At: c.now(), Status: resp.StatusCode, Header: resp.Header, Body: answer}
	derr := c.classify(ctx, resp, answer)
	c.last.Store(&a)
	return a, derr
}

func (c *punchClient) transportError(ctx context.Context, err error) *DeliveryError {
	var se *signError
	switch {
	case errors.As(err, &se):
		return &DeliveryError{Kind: KindHeld, Err: se.err}
	case errors.Is(context.Cause(ctx), ErrAbandoned):
		return &DeliveryError{Kind: KindAbandoned, Err: ErrAbandoned}
	}
	return &DeliveryError{Kind: KindNetwork, Err: err}
}

// classify turns an answer into nil (delivered) or a DeliveryError, by
// HTTP status and WeChat Pay's code (wechatpay.Classify). An answer that is
// not 2xx is shown to the authenticator first (AnswerObserver), which may
// learn WeChat Pay's time from it.
func (c *punchClient) classify(ctx context.Context, resp *http.Response, answer []byte) *DeliveryError {
	e := &DeliveryError{Status: resp.StatusCode, RequestID: resp.Header.Get("Request-ID")}
	class := wechatpay.ClassSuccess
	if s := resp.StatusCode; s < 200 || s >= 300 {
		body := errorBody(answer)
		e.Code, e.Message = body.Code, body.Message
		class = wechatpay.Classify(s, e.Code, e.Message)
		if o, ok := c.auth.(AnswerObserver); ok {
			e.Resigned = o.Observe(ctx, resp, answer)
		}
	}
	switch class {
	case wechatpay.ClassSuccess:
		if err := c.auth.Verify(ctx, resp, answer); err != nil {
			e.Kind, e.Err = KindUnverified, err
			return e
		}
		return nil
	case wechatpay.ClassThrottled:
		e.Kind = KindThrottled
	case wechatpay.ClassSetup:
		e.Kind = KindHeld
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			e.Location = resp.Header.Get("Location")
		}
	case wechatpay.ClassEvent:
		e.Kind = KindRejected
	default:
		e.Kind = KindServer
	}
	if ra, ok := c.retryAfter(resp); ok {
		e.RetryAfter = ra
	}
	return e
}

// retryAfter parses a Retry-After header on a 429 or 503, in seconds or as
// an HTTP date.
func (c *punchClient) retryAfter(resp *http.Response) (time.Duration, bool) {
	if !wechatpay.RetryLater(resp.StatusCode) {
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(c.now()), 0), true
	}
	return 0, false
}
