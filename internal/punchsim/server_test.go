package punchsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAcceptsSignedPunch(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	for _, tc := range []struct {
		name, acceptSerial, wantSerial string
	}{
		{"public key mode", sharedKeys.PublicKeyID, sharedKeys.PublicKeyID},
		{"platform certificate mode", sharedKeys.PlatformSerialNo, sharedKeys.PlatformSerialNo},
		{"no Wechatpay-Serial", "", sharedKeys.PublicKeyID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := c.do(req{acceptSerial: tc.acceptSerial})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
				t.Fatalf("answer %d %q, want 204 and no body", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Wechatpay-Serial"); got != tc.wantSerial {
				t.Errorf("Wechatpay-Serial %q, want %q", got, tc.wantSerial)
			}
			if resp.Header.Get("Request-ID") == "" {
				t.Error("no Request-ID")
			}
			if err := verifyAnswer(t, resp, body); err != nil {
				t.Errorf("answer signature: %v", err)
			}
		})
	}
	acc := s.Accepted()
	if len(acc) != 3 {
		t.Fatalf("accepted %d punches, want 3", len(acc))
	}
	want := Punch{PlateNumber: "粤B12345", DriverLicense: "42108319880906011X",
		EventTime: "2026-11-28T10:30:00.123+08:00", EventType: "SIGN_IN", RegionID: 440300}
	if acc[0] != want {
		t.Errorf("accepted %+v, want %+v", acc[0], want)
	}
	if st := s.Stats(); st.Requests != 3 || st.Accepted != 3 || len(st.Rejected) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRejectsBadRequests(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	reused := nonce()
	if resp, _, err := c.do(req{nonce: reused}); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first use of nonce: %v %v", resp, err)
	}
	other := `{"plate_number":"粤B00000","driver_license":"42108319880906011X","event_time":"2026-11-28T10:30:00.123+08:00","event_type":"SIGN_IN","region_id":440300}`
	empty := ""
	body := func(fields string) string { return "{" + fields + "}" }
	const (
		pl = `"plate_number":"粤B12345"`
		dl = `"driver_license":"42108319880906011X"`
		et = `"event_time":"2026-11-28T10:30:00.123+08:00"`
		ty = `"event_type":"SIGN_IN"`
		ri = `"region_id":440300`
	)
	join := func(f ...string) string { return body(strings.Join(f, ",")) }
	for _, tc := range []struct {
		name       string
		r          req
		wantStatus int
		wantReason string
	}{
		{"GET", req{method: http.MethodGet}, 405, RejectMethod},
		{"wrong path", req{path: "/v3/taxi-invoice/attendance/punches"}, 404, RejectPath},
		{"no Authorization", req{noAuth: true}, 401, RejectAuthorization},
		{"wrong mchid", req{mchid: "1900000002"}, 401, RejectMchID},
		{"wrong serial", req{serial: "ABCDEF"}, 401, RejectSerial},
		{"signature over another body", req{signBody: &other}, 401, RejectSignature},
		{"timestamp 6 minutes old", req{ts: time.Now().Add(-6 * time.Minute).Unix()}, 401, RejectTimestamp},
		{"timestamp 6 minutes ahead", req{ts: time.Now().Add(6 * time.Minute).Unix()}, 401, RejectTimestamp},
		{"nonce reused", req{nonce: reused}, 401, RejectNonceReused},
		{"text/plain", req{contentType: "text/plain"}, 400, RejectContentType},
		{"no User-Agent", req{userAgent: &empty}, 400, RejectUserAgent},
		{"not JSON", req{body: "plate_number=x"}, 400, RejectBody},
		{"missing region_id", req{body: join(pl, dl, et, ty)}, 400, RejectBody},
		{"extra field", req{body: join(pl, dl, et, ty, ri, `"detail":"x"`)}, 400, RejectBody},
		{"empty plate", req{body: join(`"plate_number":""`, dl, et, ty, ri)}, 400, RejectBody},
		{"event_time without millis", req{body: join(pl, dl, `"event_time":"2026-11-28T10:30:00+08:00"`, ty, ri)}, 400, RejectBody},
		{"event_time in UTC", req{body: join(pl, dl, `"event_time":"2026-11-28T02:30:00.123Z"`, ty, ri)}, 400, RejectBody},
		{"event_type lower case", req{body: join(pl, dl, et, `"event_type":"sign_in"`, ri)}, 400, RejectBody},
		{"region_id string", req{body: join(pl, dl, et, ty, `"region_id":"440300"`)}, 400, RejectBody},
		{"region_id fraction", req{body: join(pl, dl, et, ty, `"region_id":440300.5`)}, 400, RejectBody},
		{"region_id negative", req{body: join(pl, dl, et, ty, `"region_id":-1`)}, 400, RejectBody},
		{"trailing data", req{body: validBody + "{}"}, 400, RejectBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := c.do(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			var e struct{ Code, Message string }
			if err := json.Unmarshal(body, &e); err != nil || e.Code == "" || e.Message == "" {
				t.Errorf("error body %q: want code and message", body)
			}
			if err := verifyAnswer(t, resp, body); err != nil {
				t.Errorf("error answer signature: %v", err)
			}
			x := s.Exchanges()
			if last := x[len(x)-1]; last.Rejection != tc.wantReason || last.Accepted {
				t.Errorf("exchange %+v, want rejection %q", last, tc.wantReason)
			}
		})
	}
	if n := len(s.Accepted()); n != 1 {
		t.Errorf("accepted %d, want only the first", n)
	}
	if got := s.Stats().Rejected[RejectBody]; got != 11 {
		t.Errorf("rejected for body %d times, want 11", got)
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	for _, tc := range []struct {
		fault      Fault
		wantStatus int
		wantCode   string
		wantSigned bool // the answer verifies
		check      func(t *testing.T, resp *http.Response)
	}{
		{Fault{Kind: ServerError}, 500, "SYSTEM_ERROR", true, nil},
		{Fault{Kind: Unavailable, RetryAfter: "7"}, 503, "SYSTEM_ERROR", true, nil},
		{Fault{Kind: RateLimited, RetryAfter: "3600"}, 429, "FREQUENCY_LIMITED", true, func(t *testing.T, r *http.Response) {
			if got := r.Header.Get("Retry-After"); got != "3600" {
				t.Errorf("Retry-After %q", got)
			}
		}},
		{Fault{Kind: BadRequest, Code: "INVALID_REQUEST", Message: "司机未注册"}, 400, "INVALID_REQUEST", true, nil},
		{Fault{Kind: Unauthorized}, 401, "SIGN_ERROR", true, nil},
		{Fault{Kind: Forbidden}, 403, "NO_AUTH", true, nil},
		{Fault{Kind: NotFound}, 404, "RESOURCE_NOT_EXISTS", true, nil},
		{Fault{Kind: Unsigned}, 204, "", false, func(t *testing.T, r *http.Response) {
			if r.Header.Get("Wechatpay-Signature") != "" {
				t.Error("unsigned answer carries a signature")
			}
		}},
		{Fault{Kind: BadSignature}, 204, "", false, nil},
		{Fault{Kind: OldTimestamp}, 204, "", false, nil},
		{Fault{Kind: SignTest}, 204, "", false, func(t *testing.T, r *http.Response) {
			if !strings.HasPrefix(r.Header.Get("Wechatpay-Signature"), "WECHATPAY/SIGNTEST/") {
				t.Error("no probe signature")
			}
		}},
	} {
		t.Run(string(tc.fault.Kind), func(t *testing.T) {
			s.Inject(tc.fault)
			resp, body, err := c.do(req{})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantCode != "" {
				var e struct{ Code string }
				_ = json.Unmarshal(body, &e)
				if e.Code != tc.wantCode {
					t.Errorf("code %q, want %q", e.Code, tc.wantCode)
				}
			}
			if err := verifyAnswer(t, resp, body); (err == nil) != tc.wantSigned {
				t.Errorf("answer verifies: %v, want %v", err, tc.wantSigned)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
			x := s.Exchanges()
			if last := x[len(x)-1]; last.Fault != tc.fault.Kind || last.Accepted {
				t.Errorf("exchange %+v", last)
			}
		})
	}
	if n := len(s.Accepted()); n != 0 {
		t.Errorf("faulted requests accepted: %d", n)
	}
	if got := s.Stats().Faults[ServerError]; got != 1 {
		t.Errorf("server_error counted %d times", got)
	}
}

func TestResetFault(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	s.Inject(Fault{Kind: Reset})
	if _, _, err := c.do(req{}); err == nil {
		t.Fatal("reset fault: request succeeded")
	}
	// The next request on a new connection goes through.
	if resp, _, err := c.do(req{}); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after reset: %v %v", resp, err)
	}
	if got := len(s.Accepted()); got != 1 {
		t.Errorf("accepted %d, want 1", got)
	}
}

func TestStallFault(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)

	s.Inject(Fault{Kind: Stall, Delay: 20 * time.Millisecond})
	if resp, _, err := c.do(req{}); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("short stall: %v %v", resp, err)
	}

	s.Inject(Fault{Kind: Stall, Delay: time.Hour})
	// The client gives up once the server has taken the stall, that is,
	// holds the request: signing and sending take their time on an
	// emulated armv7 CPU, more than any fixed deadline short of the stall.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			s.mu.Lock()
			taken := len(s.queue) == 0
			s.mu.Unlock()
			if taken {
				return
			}
		}
	}()
	if _, _, err := c.do(req{ctx: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("long stall: err %v, want the client's cancellation", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := s.WaitExchanges(wctx, 2); err != nil {
		t.Fatal(err)
	}
	x := s.Exchanges()
	if x[1].Accepted || x[1].Status != 0 {
		t.Errorf("abandoned stall recorded as %+v", x[1])
	}
	if got := len(s.Accepted()); got != 1 {
		t.Errorf("accepted %d, want the short stall only", got)
	}
}

func TestFaultFunc(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	s := newServer(t, Options{Faults: func(x Exchange) Fault {
		mu.Lock()
		seen = append(seen, x.Seq)
		mu.Unlock()
		if x.Seq%2 == 1 {
			return Fault{Kind: ServerError}
		}
		return Fault{}
	}})
	c := newClient(t, s)
	s.Inject(Fault{Kind: Forbidden}) // the queue goes first
	want := []int{403, 204, 500, 204}
	for i, w := range want {
		resp, _, err := c.do(req{})
		if err != nil || resp.StatusCode != w {
			t.Fatalf("request %d: %v %v, want %d", i+1, resp, err, w)
		}
	}
	if len(seen) != 3 {
		t.Errorf("fault func consulted %d times, want 3", len(seen))
	}
}

func TestOnExchangeHook(t *testing.T) {
	got := make(chan Exchange, 1)
	s := newServer(t, Options{OnExchange: func(x Exchange) { got <- x }})
	c := newClient(t, s)
	if _, _, err := c.do(req{}); err != nil {
		t.Fatal(err)
	}
	x := <-got
	if !x.Accepted || x.Punch == nil || x.Nonce == "" || x.Seq != 1 {
		t.Errorf("hook saw %+v", x)
	}
}

func TestStopStartKeepsAddress(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	url := s.URL()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.do(req{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("while stopped: err %v, want connection refused", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrRunning) {
		t.Errorf("second Start: %v, want ErrRunning", err)
	}
	if s.URL() != url {
		t.Errorf("URL changed from %s to %s", url, s.URL())
	}
	if resp, _, err := c.do(req{}); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	s.Close()
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := New(sharedKeys, Options{Addr: "0.0.0.0:0"}); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("err %v, want ErrNotLoopback", err)
	}
}

func TestGenerateKeysFiles(t *testing.T) {
	k := sharedKeys
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{k.PrivateKeyFile, 0o600}, {k.PublicKeySignerFile, 0o600}, {k.PlatformKeyFile, 0o600}, {k.TLSKeyFile, 0o600},
		{k.PublicKeyFile, 0o644}, {k.PlatformCertFile, 0o644}, {k.CAFile, 0o644}, {k.TLSCertFile, 0o644},
	} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s mode %04o, want %04o", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	if _, err := loadPrivateKey(k.PrivateKeyFile); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(k.PublicKeyID, "PUB_KEY_ID_") || k.MchID == "" || len(k.MerchantSerialNo) != 40 || k.PlatformSerialNo == "" {
		t.Errorf("keys %+v", k)
	}
	dir := strings.TrimSuffix(k.CAFile, "/ca.pem")
	loaded, err := LoadKeys(dir)
	if err != nil || loaded != k {
		t.Errorf("LoadKeys = %+v, %v; want %+v", loaded, err, k)
	}
}

func TestDelayedError(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	s.Inject(Fault{Kind: ServerError, Delay: 30 * time.Millisecond})
	start := time.Now()
	resp, _, err := c.do(req{})
	if err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("delayed 500: %v %v", resp, err)
	}
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("answered after %s, before the delay", took)
	}
}

// TestReceivedPerRequest: each request on a kept-alive connection carries
// its own kernel receive time, within the client's call.
func TestReceivedPerRequest(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("kernel receive timestamps are read on Linux only")
	}
	s := newServer(t, Options{})
	c := newClient(t, s)
	for i := range 3 {
		time.Sleep(50 * time.Millisecond) // apart from the handshake and the last answer
		before := time.Now()
		if resp, _, err := c.do(req{}); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d: %v", i, err)
		}
		after := time.Now()
		x := s.Exchanges()[i]
		if x.Received.Before(before.Add(-time.Millisecond)) || x.Received.After(after) {
			t.Errorf("request %d received at %v, want within its call [%v, %v]", i, x.Received, before, after)
		}
		if x.Received.After(x.At.Add(time.Millisecond)) {
			t.Errorf("request %d received at %v, after its handler took it up at %v", i, x.Received, x.At)
		}
	}
	if st := s.Stats(); st.Connections != 1 {
		t.Errorf("%d connections, want the 3 requests on one", st.Connections)
	}
}
