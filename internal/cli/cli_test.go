package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"taxi-agent/internal/config"
)

func TestDispatch(t *testing.T) {
	var ran []string
	cmds := []Command{{Name: "ls", Summary: "list", Run: func(_ context.Context, args []string, _, _ io.Writer) error {
		ran = append(ran, strings.Join(args, " "))
		return nil
	}}}
	var stderr bytes.Buffer
	if err := Dispatch(context.Background(), "agent outbox", "-config FILE", cmds, []string{"ls", "-json"}, io.Discard, &stderr); err != nil || strings.Join(ran, "|") != "-json" {
		t.Fatalf("ls: %v, ran %q", err, ran)
	}
	for _, tc := range []struct {
		args []string
		err  error
		out  string
	}{
		{nil, ErrUsage, "usage: agent outbox <command> -config FILE\n"},
		{[]string{"rm"}, ErrUsage, "agent outbox: unknown command \"rm\"\n"},
		{[]string{"-h"}, nil, "  ls list\n"},
	} {
		stderr.Reset()
		err := Dispatch(context.Background(), "agent outbox", "-config FILE", cmds, tc.args, io.Discard, &stderr)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || !strings.Contains(stderr.String(), tc.out) {
			t.Errorf("%q: %v\n%s", tc.args, err, stderr.String())
		}
	}
}

func TestParseAndExitCode(t *testing.T) {
	var stderr bytes.Buffer
	fs := NewFlagSet("agent", "check-config", "-config FILE", &stderr)
	fs.String("config", "", "")
	if err := Parse(fs, []string{"-config", "a.toml", "other.toml"}, 0); !errors.Is(err, ErrUsage) ||
		!strings.Contains(stderr.String(), `unexpected argument "other.toml"`) {
		t.Errorf("a stray argument: %v\n%s", err, stderr.String())
	}
	if err := Parse(fs, []string{"-h"}, 0); !errors.Is(err, flag.ErrHelp) || ExitCode("agent", err, io.Discard) != 0 {
		t.Errorf("-h: %v", err)
	}
	stderr.Reset()
	problems := config.Problems{{Key: "meter.baud", Msg: "bad"}}
	if code := ExitCode("agent", problems, &stderr); code != 2 || !strings.Contains(stderr.String(), "  meter.baud: bad\n") {
		t.Errorf("config problems: exit %d\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := ExitCode("taxi-gateway", errors.New("boom"), &stderr); code != 1 || stderr.String() != "taxi-gateway: boom\n" {
		t.Errorf("other error: exit %d %q", code, stderr.String())
	}
}
