package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"taxi-agent/internal/punch"
	"taxi-agent/internal/redact"
	"taxi-agent/internal/uploader"
)

// Retry-After the gateway sends when WeChat Pay did not give one.
const (
	unavailableRetry = 5 * time.Second  // WeChat Pay unreachable, 5xx, unverifiable
	misconfigRetry   = 60 * time.Second // the gateway cannot sign or is redirected: an operator must act
)

// maxRequest bounds a punch request body; a punch is about 150 bytes.
const maxRequest = 4 << 10

// punchRequest is the body a terminal sends: WeChat Pay's five fields.
type punchRequest struct {
	PlateNumber   *string `json:"plate_number"`
	DriverLicense *string `json:"driver_license"`
	EventTime     *string `json:"event_time"`
	EventType     *string `json:"event_type"`
	RegionID      *int64  `json:"region_id"`
}

// parsePunch decodes a terminal's punch; the error says what is wrong.
func parsePunch(body []byte) (punch.Event, error) {
	var p punchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return punch.Event{}, fmt.Errorf("body is not a punch: %v", err)
	}
	if dec.More() {
		return punch.Event{}, errors.New("body holds more than one JSON value")
	}
	for name, v := range map[string]*string{
		"plate_number": p.PlateNumber, "driver_license": p.DriverLicense,
		"event_time": p.EventTime, "event_type": p.EventType,
	} {
		if v == nil || *v == "" {
			return punch.Event{}, fmt.Errorf("%s is missing", name)
		}
	}
	if p.RegionID == nil {
		return punch.Event{}, errors.New("region_id is missing")
	}
	return punch.Event{
		PlateNumber: *p.PlateNumber, DriverLicense: *p.DriverLicense,
		EventTime: *p.EventTime, Type: *p.EventType, RegionID: *p.RegionID,
	}, nil
}

// errorBody is an answer body in WeChat Pay's shape, so that a terminal
// records the code and message as it does WeChat Pay's.
func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	return b
}

func own(status int, outcome, code, msg string, retry time.Duration) Verdict {
	return Verdict{Status: status, Body: errorBody(code, msg), RetryAfter: retry, Outcome: outcome}
}

// lateAnswerWait is how long the gateway keeps a call open after
// wechatpay.attempt_timeout, when WeChat Pay has not answered: the terminal
// is told to come back (503), but the request may have reached WeChat Pay
// and be accepted late, so a retry of the punch meanwhile waits for this
// call instead of sending the punch a second time. Only an answer later
// than this can still make a duplicate.
const lateAnswerWait = time.Minute

// relay sends ev for the terminal of plate through the queue to WeChat Pay
// and returns the verdict, answering a retry of a delivered or in-flight
// punch without a second call. It answers within the queue's wait plus
// wechatpay.attempt_timeout.
func (g *Gateway) relay(ctx context.Context, plate string, ev punch.Event) Verdict {
	k := PunchKey{Plate: ev.PlateNumber, Licence: ev.DriverLicense, Type: ev.Type, Time: ev.EventTime}
	dup, f, leader := g.dedup.begin(k)
	if dup {
		return Verdict{Status: http.StatusNoContent, Outcome: OutcomeDuplicate}
	}
	if !leader {
		fctx, cancel := context.WithTimeout(ctx, g.cfg.WeChatPay.AttemptTimeout.Duration)
		defer cancel()
		v, err := f.follow(fctx)
		if err != nil {
			return own(http.StatusServiceUnavailable, OutcomeUnavailable, "SYSTEM_ERROR", "gateway: the same punch is still in flight", unavailableRetry)
		}
		if v.Status == http.StatusNoContent {
			v.Outcome = OutcomeDuplicate
		}
		return v
	}
	return g.relayOnce(ctx, plate, k, ev, f)
}

// relayOnce is the leader's relay: shared store, slot, call, verdict. It
// ends flight f with the call's verdict, once the call is over.
func (g *Gateway) relayOnce(ctx context.Context, plate string, k PunchKey, ev punch.Event, f *flight) Verdict {
	end := func(v Verdict) Verdict {
		g.dedup.end(k, f, v, v.Outcome == OutcomeDelivered)
		return v
	}
	if g.shared != nil {
		if ok, err := g.shared.Delivered(ctx, k); err != nil {
			g.log.Warn("shared dedup store unreadable; relaying", "err", err)
		} else if ok {
			g.dedup.markDelivered(k)
			return end(Verdict{Status: http.StatusNoContent, Outcome: OutcomeDuplicate})
		}
	}
	queued := time.Now()
	done, ra, err := g.queue.Wait(ctx, plate)
	switch {
	case errors.Is(err, ErrQueueTimeout):
		return end(own(http.StatusTooManyRequests, OutcomeThrottled, "FREQUENCY_LIMITED",
			fmt.Sprintf("gateway: the fleet is at its rate of %g punches/s; come back in %d s", g.cfg.Limit.Rate, int(ra/time.Second)), ra))
	case err != nil:
		return end(own(http.StatusServiceUnavailable, OutcomeUnavailable, "SYSTEM_ERROR", "gateway: shutting down", time.Second))
	}
	defer done()
	attempt := g.cfg.WeChatPay.AttemptTimeout.Duration
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attempt+lateAnswerWait)
	var start time.Time
	cctx = wireGate(cctx, g.limiter, func() {
		if start.IsZero() {
			start = time.Now()
			g.obs.Waited(start.Sub(queued))
			done()
		}
	})
	answered := make(chan Verdict, 1)
	go func() {
		defer cancel()
		a, derr := g.client.Exchange(cctx, ev)
		if !start.IsZero() {
			g.obs.WeChatCall(time.Since(start))
		}
		v := g.verdict(a, derr)
		if v.Outcome == OutcomeDelivered && g.shared != nil {
			if err := g.shared.MarkDelivered(context.WithoutCancel(ctx), k); err != nil {
				g.log.Warn("shared dedup store unwritable", "err", err)
			}
		}
		answered <- end(v)
	}()
	t := time.NewTimer(attempt)
	defer t.Stop()
	select {
	case v := <-answered:
		return v
	case <-t.C:
		g.log.Warn("WeChat Pay has not answered within wechatpay.attempt_timeout; the call stays open, and a retry of the punch waits for it",
			"punch", k, "attempt_timeout", attempt, "kept_open", lateAnswerWait)
		return own(http.StatusServiceUnavailable, OutcomeUnavailable, "SYSTEM_ERROR",
			"gateway: WeChat Pay has not answered yet; come back: the punch is not sent twice", unavailableRetry)
	}
}

// verdict maps WeChat Pay's answer to the terminal's.
func (g *Gateway) verdict(a uploader.Answer, derr *uploader.DeliveryError) Verdict {
	if derr == nil {
		return Verdict{Status: http.StatusNoContent, Outcome: OutcomeDelivered}
	}
	switch {
	case derr.Kind == uploader.KindThrottled:
		g.obs.WeChat429()
		g.log.Warn("WeChat Pay answered 429: limit.rate is above what it allows", "request_id", derr.RequestID)
		ra := max(derr.RetryAfter, time.Second)
		return own(http.StatusTooManyRequests, OutcomeWeChat429, "FREQUENCY_LIMITED", "WeChat Pay is rate-limiting the fleet", ra)
	case a.Status >= 400 && a.Status < 500 && (derr.Rejected() || derr.Held()):
		// WeChat Pay's own verdict: the terminal dead-letters or holds
		// exactly as in direct mode.
		v := Verdict{Status: a.Status, Body: a.Body, Outcome: OutcomeRejected, Header: map[string]string{}}
		if id := a.Header.Get("Request-ID"); id != "" {
			v.Header["Request-ID"] = id
		}
		if a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden || a.Status == http.StatusNotFound {
			g.log.Error("WeChat Pay refuses the gateway's requests: check its [wechatpay] section", "status", a.Status, "code", derr.Code, "request_id", derr.RequestID)
		}
		return v
	case derr.Held():
		g.log.Error("cannot relay punches", "err", derr)
		return own(http.StatusServiceUnavailable, OutcomeUnavailable, "SYSTEM_ERROR", "gateway: cannot reach WeChat Pay as configured; its operator is told", misconfigRetry)
	}
	ra := unavailableRetry
	if derr.RetryAfter > 0 {
		ra = derr.RetryAfter
	}
	msg := "gateway: WeChat Pay is unavailable"
	if derr.Kind == uploader.KindUnverified {
		msg = "gateway: WeChat Pay's answer did not verify"
	}
	g.log.Warn("punch not delivered", "kind", derr.Kind.String(), "status", derr.Status, "err", derr.Err)
	return own(http.StatusServiceUnavailable, OutcomeUnavailable, "SYSTEM_ERROR", msg, ra)
}

// ServeHTTP is the punch endpoint for terminals.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != uploader.PunchPath {
		g.write(w, own(http.StatusNotFound, OutcomeBadRequest, "NOT_FOUND", "gateway: only POST "+uploader.PunchPath, 0))
		return
	}
	if r.Method != http.MethodPost {
		g.write(w, own(http.StatusMethodNotAllowed, OutcomeBadRequest, "NOT_FOUND", "gateway: only POST "+uploader.PunchPath, 0))
		return
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		g.write(w, own(http.StatusUnauthorized, OutcomeRevoked, "SIGN_ERROR", "gateway: no verified client certificate", 0))
		return
	}
	cert := r.TLS.VerifiedChains[0][0]
	serial, plate := SerialString(cert.SerialNumber), PlateOf(cert)
	if g.revoked.Revoked(serial) {
		w.Header().Set("Connection", "close")
		g.write(w, own(http.StatusForbidden, OutcomeRevoked, "CERT_REVOKED", fmt.Sprintf("gateway: certificate %s (%s) is revoked", serial, plate), 0))
		g.terminals.note(serial, plate, OutcomeRevoked, time.Now())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		g.write(w, own(http.StatusBadRequest, OutcomeBadRequest, "PARAM_ERROR", "gateway: "+err.Error(), 0))
		return
	}
	ev, err := parsePunch(body)
	if err != nil {
		g.write(w, own(http.StatusBadRequest, OutcomeBadRequest, "PARAM_ERROR", "gateway: "+err.Error(), 0))
		g.terminals.note(serial, plate, OutcomeBadRequest, time.Now())
		return
	}
	log := g.log.With("plate", plate, "serial", serial, "driver_license", redact.LicenceValue(ev.DriverLicense),
		"event_type", ev.Type, "event_time", ev.EventTime)
	if ev.PlateNumber != plate {
		log.Warn("punch for another plate refused", "punch_plate", ev.PlateNumber)
		g.write(w, own(http.StatusForbidden, OutcomePlateMismatch, "PLATE_MISMATCH",
			fmt.Sprintf("gateway: this terminal's certificate names %s; the punch is for %s: set vehicle.plate_number to %s or enroll the terminal for %s",
				plate, ev.PlateNumber, plate, ev.PlateNumber), 0))
		g.terminals.note(serial, plate, OutcomePlateMismatch, time.Now())
		return
	}
	v := g.relay(r.Context(), plate, ev)
	log.Debug("punch relayed", "status", v.Status, "outcome", v.Outcome)
	g.terminals.note(serial, plate, v.Outcome, time.Now())
	g.write(w, v)
}

// write sends a verdict and counts it.
func (g *Gateway) write(w http.ResponseWriter, v Verdict) {
	g.obs.Punch(v.Outcome)
	h := w.Header()
	for k, val := range v.Header {
		h.Set(k, val)
	}
	if v.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((v.RetryAfter+time.Second-1)/time.Second)))
	}
	if len(v.Body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(v.Status)
	if len(v.Body) > 0 && v.Status != http.StatusNoContent {
		_, _ = w.Write(v.Body)
	}
}
