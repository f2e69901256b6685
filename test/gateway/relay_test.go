package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// TestVerdictRelayed checks each class of WeChat Pay's answer against what
// the terminal is told.
func TestVerdictRelayed(t *testing.T) {
	g, ep := rig(t, 100)
	c := g.Client(g.Enroll(harness.Plate))
	ctx := ctxT(t)
	cases := []struct {
		fault      punchsim.Fault
		status     int
		code       string
		retryAfter bool
	}{
		{punchsim.Fault{}, 204, "", false},
		{punchsim.Fault{Kind: punchsim.BadRequest}, 400, "PARAM_ERROR", false},
		{punchsim.Fault{Kind: punchsim.Unauthorized}, 401, "SIGN_ERROR", false},
		{punchsim.Fault{Kind: punchsim.Forbidden}, 403, "NO_AUTH", false},
		{punchsim.Fault{Kind: punchsim.ServerError}, 503, "SYSTEM_ERROR", true},
		{punchsim.Fault{Kind: punchsim.Unavailable, RetryAfter: "7"}, 503, "SYSTEM_ERROR", true},
		{punchsim.Fault{Kind: punchsim.RateLimited, RetryAfter: "3"}, 429, "FREQUENCY_LIMITED", true},
		{punchsim.Fault{Kind: punchsim.Unsigned}, 503, "SYSTEM_ERROR", true},
		{punchsim.Fault{Kind: punchsim.BadSignature}, 503, "SYSTEM_ERROR", true},
		{punchsim.Fault{Kind: punchsim.SignTest}, 503, "SYSTEM_ERROR", true},
		{punchsim.Fault{Kind: punchsim.OldTimestamp}, 503, "SYSTEM_ERROR", true},
	}
	for i, tc := range cases {
		name := string(tc.fault.Kind)
		if name == "" {
			name = "accepted"
		}
		// Every try of this punch (a 5xx is retried once inside the
		// attempt) meets the fault.
		lic, fault := harness.Licence(i), tc.fault
		ep.SetFaults(func(x punchsim.Exchange) punchsim.Fault {
			if x.Punch != nil && x.Punch.DriverLicense == lic {
				return fault
			}
			return punchsim.Fault{}
		})
		st, body, h, err := g.Punch(ctx, c, punchBody(harness.Plate, i, i))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", name, st, tc.status, body)
		}
		var b struct{ Code, Message string }
		_ = json.Unmarshal([]byte(body), &b)
		if b.Code != tc.code {
			t.Errorf("%s: code %q, want %q (%s)", name, b.Code, tc.code, body)
		}
		if got := h.Get("Retry-After") != ""; got != tc.retryAfter {
			t.Errorf("%s: Retry-After %q", name, h.Get("Retry-After"))
		}
		if tc.fault.Kind == punchsim.Unavailable && h.Get("Retry-After") != "7" {
			t.Errorf("%s: Retry-After %q, want WeChat Pay's 7", name, h.Get("Retry-After"))
		}
		if st >= 400 && st < 500 && st != 429 && h.Get("Request-ID") == "" {
			t.Errorf("%s: WeChat Pay's Request-ID not relayed", name)
		}
	}
	if got := len(ep.Accepted()); got != 1 {
		t.Errorf("WeChat Pay accepted %d punches, want 1", got)
	}
	m := scrape(t, g.MetricsURL())
	for _, want := range []string{
		`taxi_gateway_punches_total{outcome="delivered"} 1`,
		`taxi_gateway_punches_total{outcome="rejected"} 3`,
		`taxi_gateway_punches_total{outcome="wechatpay_429"} 1`,
		`taxi_gateway_punches_total{outcome="unavailable"} 6`,
		`taxi_gateway_wechatpay_429_total 1`,
		`taxi_gateway_queue_depth 0`,
		`taxi_gateway_queue_wait_seconds_count 11`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(m, harness.Plate) || strings.Contains(m, harness.Licence(1)) {
		t.Error("metrics carry a plate or a licence")
	}
	// Logs: licences masked.
	if out := g.Output(); strings.Contains(out, harness.Licence(1)) || !strings.Contains(out, "driver_license=") {
		t.Errorf("gateway log carries a licence in clear, or none masked:\n%s", harness.Tail(out, 20))
	}
}

// TestRetryAfterLostAnswerReachesWeChatOnce: the terminal gives up while
// WeChat Pay is slow, retries, and the punch is sent to WeChat Pay once.
func TestRetryAfterLostAnswerReachesWeChatOnce(t *testing.T) {
	g, ep := rig(t, 100)
	c := g.Client(g.Enroll(harness.Plate))
	body := punchBody(harness.Plate, 1, 1)
	ep.Inject(punchsim.Fault{Kind: punchsim.Stall, Delay: 1500 * time.Millisecond})
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if _, _, _, err := g.Punch(short, c, body); err == nil {
		t.Fatal("the first attempt got an answer; it should have been lost")
	}
	cancel()
	// A retry while the first is still in flight joins it; one after it
	// is answered from memory.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			st, b, _, err := g.Punch(ctxT(t), c, body)
			if err != nil || st != 204 {
				t.Errorf("retry: %d %s %v", st, b, err)
			}
		})
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	if st, b, _, err := g.Punch(ctxT(t), c, body); err != nil || st != 204 {
		t.Fatalf("late retry: %d %s %v", st, b, err)
	}
	if n := ep.Stats().Requests; n != 1 {
		t.Fatalf("WeChat Pay saw %d requests, want 1", n)
	}
	if !strings.Contains(scrape(t, g.MetricsURL()), `taxi_gateway_punches_total{outcome="duplicate"} 3`+"\n") {
		t.Error("duplicates not counted")
	}
}

// TestLateWeChatAnswerReachesWeChatOnce: WeChat Pay answers after the
// gateway's wechatpay.attempt_timeout (a request it took but answered
// late, as a loaded WeChat Pay or network does). The terminal is told to
// come back, but the call stays open; the terminal's retries wait for it
// and get its 204, and WeChat Pay sees the punch once.
func TestLateWeChatAnswerReachesWeChatOnce(t *testing.T) {
	ep := harness.StartEndpoint(t, punchsim.Options{})
	g := harness.NewGateway(t, gatewayBin, ep, 100)
	g.Config.WeChatPay.AttemptTimeout.Duration = time.Second
	g.WriteConfig()
	g.Start()
	c := g.Client(g.Enroll(harness.Plate))
	body := punchBody(harness.Plate, 1, 1)
	ep.Inject(punchsim.Fault{Kind: punchsim.Stall, Delay: 3 * time.Second})
	st, b, _, err := g.Punch(ctxT(t), c, body)
	if err != nil || st != http.StatusServiceUnavailable || !strings.Contains(string(b), "not sent twice") {
		t.Fatalf("first attempt: %d %s %v; want 503 while WeChat Pay has not answered", st, b, err)
	}
	var answers []int
	deadline := time.Now().Add(20 * time.Second)
	for st != http.StatusNoContent && time.Now().Before(deadline) {
		if st, b, _, err = g.Punch(ctxT(t), c, body); err != nil {
			t.Fatal(err)
		}
		answers = append(answers, st)
	}
	if st != http.StatusNoContent {
		t.Fatalf("retries answered %v, last %s; want a 204 once WeChat Pay answers", answers, b)
	}
	if x := ep.Stats(); x.Requests != 1 || len(ep.Accepted()) != 1 {
		t.Fatalf("WeChat Pay saw %d requests and accepted %d punches, want 1 and 1 (retries answered %v)", x.Requests, len(ep.Accepted()), answers)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
