package gateway

import (
	"errors"
	"strings"
	"testing"

	"taxi-agent/internal/config"
)

func TestParseNamesUnknownKeys(t *testing.T) {
	_, err := Parse(strings.NewReader("[limit]\nrate = 10\nburst = 5\n[listn]\naddr = \":1\"\n"))
	var p config.Problems
	if !errors.As(err, &p) {
		t.Fatalf("err %v, want config.Problems", err)
	}
	got := p.Error()
	for _, want := range []string{"limit.burst: unknown key", "listn"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", got, want)
		}
	}
}

// TestValidateWaitUnderTerminalTimeout: limit.max_wait and the WeChat Pay
// call together must end before a terminal gives up its attempt.
func TestValidateWaitUnderTerminalTimeout(t *testing.T) {
	cfg, err := Parse(strings.NewReader("[limit]\nmax_wait = \"10s\"\n[wechatpay]\nattempt_timeout = \"8s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "limit.max_wait: 10s plus wechatpay.attempt_timeout 8s") {
		t.Fatalf("Validate: %v", err)
	}
	for _, key := range []string{"listen.cert_file", "wechatpay.mchid", "wechatpay.private_key_file"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("problems lack %s:\n%v", key, err)
		}
	}
}
