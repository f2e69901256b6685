package uploader

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"taxi-agent/internal/punchsim"
)

// rawExchange signs one request with auth and sends it to sim with a plain
// client, returning the answer for Verify.
func rawExchange(t *testing.T, sim *punchsim.Server, auth *DirectAuth) (*http.Response, []byte) {
	t.Helper()
	body, err := encodeBody(event(1))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sim.URL()+PunchPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "test")
	if err := auth.Sign(t.Context(), req, body); err != nil {
		t.Fatal(err)
	}
	hc, err := newHTTPClient(Config{CAFile: testKeys.CAFile, AttemptTimeout: 5e9}, &wireCounter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, answer
}

func TestDirectAuthVerify(t *testing.T) {
	sim := newSim(t, punchsim.Options{})
	for _, tc := range []struct {
		name  string
		auth  func(testing.TB) *DirectAuth
		fault punchsim.FaultKind
		want  error
	}{
		{"public key: valid", publicKeyAuth, punchsim.None, nil},
		{"platform cert: valid", platformCertAuth, punchsim.None, nil},
		{"unsigned", publicKeyAuth, punchsim.Unsigned, ErrUnsigned},
		{"bad signature", publicKeyAuth, punchsim.BadSignature, ErrBadSignature},
		{"bad signature, platform cert", platformCertAuth, punchsim.BadSignature, ErrBadSignature},
		{"old timestamp", publicKeyAuth, punchsim.OldTimestamp, ErrStaleAnswer},
		{"SIGNTEST probe", publicKeyAuth, punchsim.SignTest, ErrSignTest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim.Inject(punchsim.Fault{Kind: tc.fault})
			resp, body := rawExchange(t, sim, tc.auth(t))
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if err := tc.auth(t).Verify(t.Context(), resp, body); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if rej := sim.Stats().Rejected; len(rej) != 0 {
		t.Errorf("the fake rejected DirectAuth's signatures: %v", rej)
	}

	// An answer signed with the public key does not verify in
	// platform-certificate mode: the key is pinned by Wechatpay-Serial.
	resp, body := rawExchange(t, sim, publicKeyAuth(t))
	if err := platformCertAuth(t).Verify(t.Context(), resp, body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("cross-mode Verify = %v, want ErrBadSignature", err)
	}
}

func TestDirectAuthSignsAfresh(t *testing.T) {
	a := publicKeyAuth(t)
	pattern := regexp.MustCompile(`^WECHATPAY2-SHA256-RSA2048 mchid="` + testKeys.MchID +
		`",nonce_str="([0-9A-Za-z]{32})",timestamp="\d+",serial_no="` + testKeys.MerchantSerialNo + `",signature="[A-Za-z0-9+/=]+"$`)
	nonces := map[string]bool{}
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, "https://example.invalid"+PunchPath, nil)
		if err := a.Sign(t.Context(), req, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		m := pattern.FindStringSubmatch(req.Header.Get("Authorization"))
		if m == nil {
			t.Fatalf("Authorization %q", req.Header.Get("Authorization"))
		}
		if nonces[m[1]] {
			t.Errorf("nonce %s reused", m[1])
		}
		nonces[m[1]] = true
		if got := req.Header.Get("Wechatpay-Serial"); got != testKeys.PublicKeyID {
			t.Errorf("Wechatpay-Serial %q", got)
		}
	}
	if got := platformCertAuth(t).AcceptSerial(); got != testKeys.PlatformSerialNo {
		t.Errorf("platform mode accept serial %q, want %q", got, testKeys.PlatformSerialNo)
	}
}

func TestNewDirectAuthRefusesBadConfig(t *testing.T) {
	loose := filepath.Join(t.TempDir(), "key.pem")
	data, err := os.ReadFile(testKeys.PrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, data, 0o644); err != nil {
		t.Fatal(err)
	}
	base := DirectAuthConfig{
		MchID: testKeys.MchID, MerchantSerialNo: testKeys.MerchantSerialNo, PrivateKeyFile: testKeys.PrivateKeyFile,
		PublicKeyID: testKeys.PublicKeyID, PublicKeyFile: testKeys.PublicKeyFile,
	}
	for _, tc := range []struct {
		name   string
		change func(c *DirectAuthConfig)
		want   error
	}{
		{"key readable by others", func(c *DirectAuthConfig) { c.PrivateKeyFile = loose }, ErrKeyPermissions},
		{"no mode", func(c *DirectAuthConfig) { c.PublicKeyID, c.PublicKeyFile = "", "" }, ErrAuthMode},
		{"public key id without file", func(c *DirectAuthConfig) { c.PublicKeyFile = "" }, ErrAuthMode},
		{"no mchid", func(c *DirectAuthConfig) { c.MchID = "" }, ErrConfig},
		{"missing key", func(c *DirectAuthConfig) { c.PrivateKeyFile = loose + ".missing" }, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			if _, err := NewDirectAuth(c); !errors.Is(err, tc.want) {
				t.Errorf("NewDirectAuth = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBodyIsExactlyTheFiveFields(t *testing.T) {
	b, err := encodeBody(event(1))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"plate_number":"粤B12345","driver_license":"421083198809000001","event_time":"2026-11-28T10:01:00.123+08:00","event_type":"SIGN_IN","region_id":440300}`
	if string(b) != want {
		t.Errorf("body\n%s\nwant\n%s", b, want)
	}
	if strings.Contains(string(b), "\\u") {
		t.Error("body escapes characters")
	}
}
