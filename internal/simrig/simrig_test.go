package simrig

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/testsupport"
)

func TestParseAction(t *testing.T) {
	for _, tt := range []struct {
		words []string
		want  Action
		err   string
	}{
		{[]string{"signin"}, SignIn, ""},
		{[]string{"endpoint", "down"}, EndpointDown, ""},
		{[]string{"endpoint", "reject"}, EndpointReject, ""},
		{[]string{"endpoint"}, "", `unknown action "endpoint"`},
		{[]string{"signin", "now"}, "", `unknown action "signin now"`},
		{[]string{"sign-in"}, "", `unknown action "sign-in": want one of signin, signout, endpoint down, endpoint up, endpoint reject`},
	} {
		a, err := ParseAction(tt.words)
		if a != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseAction(%q) = %q, %v; want %q, %q", tt.words, a, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrUnknownAction) {
			t.Errorf("ParseAction(%q) error %v does not wrap ErrUnknownAction", tt.words, err)
		}
	}
}

// startBench runs a Bench in dir until the test ends.
func startBench(t *testing.T, dir string) *testsupport.SyncBuffer {
	t.Helper()
	out := &testsupport.SyncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Bench(ctx, BenchOptions{Dir: dir, Program: "agent", Out: out}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Bench: %v", err)
		}
		// Its pseudo-terminal is gone: no config may point an agent at
		// whatever gets that device next.
		if _, err := os.Stat(filepath.Join(dir, ConfigFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("agent.toml left after the bench stopped: %v", err)
		}
	})
	testsupport.WaitFor(t, 2*time.Minute, "the bench to start (keys, endpoint, pty)", func() bool {
		return strings.Contains(out.String(), "Ctrl-C stops the bench")
	})
	return out
}

func TestBenchControl(t *testing.T) {
	dir := t.TempDir()
	out := startBench(t, dir)

	// The config it wrote is one the agent accepts, pointing at the rig.
	cfg, err := config.Load(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatalf("load agent.toml: %v", err)
	}
	if cfg.Outbox.Path != filepath.Join(dir, "outbox.db") || !strings.HasPrefix(cfg.Meter.Device, "/dev/pts/") ||
		!strings.Contains(out.String(), cfg.WeChatPay.BaseURL) {
		t.Errorf("agent.toml: outbox %s, device %s, endpoint %s; bench said:\n%s", cfg.Outbox.Path, cfg.Meter.Device, cfg.WeChatPay.BaseURL, out)
	}
	if want := "Run the agent:   agent run -config " + filepath.Join(dir, ConfigFile); !strings.Contains(out.String(), want) {
		t.Errorf("bench does not print %q:\n%s", want, out)
	}

	ctl := func(a Action) (string, error) {
		var b bytes.Buffer
		err := Control(t.Context(), dir, a, &b)
		return b.String(), err
	}
	if _, err := ctl(SignOut); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no driver is signed in") {
		t.Errorf("signout with nobody signed in: %v, want refused", err)
	}
	for _, tt := range []struct {
		a    Action
		want string
	}{
		{EndpointDown, "endpoint down"},
		{EndpointUp, "endpoint up at https://127.0.0.1:"},
		{EndpointUp, "endpoint up at https://127.0.0.1:"}, // already up: still ok
		{EndpointReject, "400 PARAM_ERROR"},
	} {
		if got, err := ctl(tt.a); err != nil || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, %v; want %q", tt.a, got, err, tt.want)
		}
	}

	// A second bench in the same directory is refused, the first one kept.
	err = Bench(t.Context(), BenchOptions{Dir: dir, Out: &testsupport.SyncBuffer{}})
	if err == nil || !strings.Contains(err.Error(), "another bench runs in") {
		t.Errorf("second bench in %s: %v", dir, err)
	}
	if _, err := ctl(EndpointDown); err != nil {
		t.Errorf("first bench stopped answering after a second one was refused: %v", err)
	}
}

func TestControlWithoutBench(t *testing.T) {
	dir := t.TempDir()
	if err := Control(t.Context(), dir, SignIn, &bytes.Buffer{}); !errors.Is(err, ErrNoBench) {
		t.Errorf("Control with no bench: %v, want ErrNoBench", err)
	}
	// A socket left by a bench that died is replaced.
	if err := os.WriteFile(filepath.Join(dir, ControlSocket), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	startBench(t, dir)
	if err := Control(t.Context(), dir, EndpointDown, &bytes.Buffer{}); err != nil {
		t.Errorf("Control after replacing a stale socket: %v", err)
	}
}
