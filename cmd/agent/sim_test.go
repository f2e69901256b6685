package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"taxi-agent/internal/simrig"
)

func TestSimUsageNamesTheMistake(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"sim"}, "sim: -dir is required"},
		{[]string{"sim", "signin"}, "sim: -dir is required"},
		{[]string{"sim", "-dir", dir, "endpoint", "sideways"}, `unknown action "endpoint sideways"`},
		{[]string{"sim", "-dir", dir, "sign-in"}, `unknown action "sign-in": want one of signin, signout, endpoint down, endpoint up, endpoint reject`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

func TestSimActionWithoutBench(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"sim", "-dir", dir, "signin"}, &stdout, &stderr)
	if !errors.Is(err, simrig.ErrNoBench) || exitCode(err, &stderr) != 1 {
		t.Fatalf("signin with no bench: %v, want ErrNoBench and exit 1", err)
	}
	if !strings.Contains(stderr.String(), "no bench running in "+dir) {
		t.Errorf("stderr %q does not say there is no bench in %s", stderr.String(), dir)
	}
}
