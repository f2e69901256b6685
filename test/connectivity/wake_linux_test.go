// Package connectivity tests issue 9's promise end to end: when the network
// returns, the head event goes out at once instead of waiting out a long
// backoff. The link is a veth in a network namespace the test creates; the
// watcher runs in it, while the real uploader and outbox deliver to the
// fake endpoint on loopback.
package connectivity

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"taxi-agent/internal/netwatch"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/testsupport"
	"taxi-agent/internal/uploader"
)

func TestHeadGoesOutWhenLinkReturns(t *testing.T) {
	watched := testsupport.VethPair(t)

	dir := t.TempDir()
	keys, err := punchsim.GenerateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := punchsim.New(keys, punchsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()

	// An outage is under way: three events wait, and the head's last
	// attempt failed on the network with five minutes of backoff ahead.
	srv.Stop()
	now := time.Now()
	for i, typ := range []string{punch.SignIn, punch.SignOut, punch.SignIn} {
		_, _, err := ob.Enqueue(outbox.Record{
			Event: punch.Event{Type: typ, DriverLicense: "42108319880906011X", PlateNumber: "粤B12345",
				RegionID: 440300, EventTime: stamp.Format(now.Add(time.Duration(i) * time.Second))},
			Identity: fmt.Sprintf("e%d", i), ReceivedAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	auth, err := uploader.NewDirectAuth(uploader.DirectAuthConfig{MchID: keys.MchID, MerchantSerialNo: keys.MerchantSerialNo,
		PrivateKeyFile: keys.PrivateKeyFile, PublicKeyID: keys.PublicKeyID, PublicKeyFile: keys.PublicKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	up, err := uploader.New(uploader.Config{BaseURL: srv.URL(), CAFile: keys.CAFile,
		BackoffMin: time.Second, BackoffMax: 5 * time.Minute, Logger: log}, ob, auth)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	changes := make(chan netwatch.Change, 16)
	var armed atomic.Bool // OnUp wakes the uploader once the scene is set
	w := netwatch.New(netwatch.Options{Logger: log,
		OnUp: func(netwatch.Change) {
			if armed.Load() {
				up.Wake()
			}
		},
		OnChange: func(c netwatch.Change) { changes <- c }})
	wDone := watched.GoIn(func() error { return w.Run(ctx) })
	defer func() { cancel(); <-wDone }()
	// The watcher reads the starting state silently; a first up/down shows
	// it is listening.
	deadline := time.After(5 * time.Second)
	for ready := false; !ready; {
		watched.IP(t, "link", "set", "vA", "up")
		select {
		case c := <-changes:
			ready = c.Kind == netwatch.KindLinkUp
		case <-time.After(200 * time.Millisecond):
			watched.IP(t, "link", "set", "vA", "down")
		case <-deadline:
			t.Fatal("watcher saw no link change")
		}
	}
	watched.IP(t, "link", "set", "vA", "down")
	waitKind(t, changes, netwatch.KindLinkDown)
	time.Sleep(netwatch.DefaultJitter + 100*time.Millisecond) // let the readiness wake pass, unarmed

	// The head's last attempt failed on the network with five minutes of
	// backoff ahead.
	head, _, _ := ob.Head()
	if err := ob.RecordFailure(head.ID, outbox.AttemptError{At: now, Err: "dial tcp: connect: network is unreachable"},
		now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Run(ctx) }()
	defer func() { cancel(); <-upDone }()
	armed.Store(true)

	// The endpoint is reachable again, but the backoff would wait minutes.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // longer than the watcher's jitter
	if n := srv.Stats().Requests; n != 0 {
		t.Fatalf("%d request(s) before the link came back: the backoff was not in the way", n)
	}

	linkUp := time.Now()
	watched.IP(t, "link", "set", "vA", "up")
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if err := srv.WaitAccepted(wctx, 1); err != nil {
		t.Fatalf("head event not delivered within 2s of the link coming up: %v (status %+v)", err, up.Status())
	}
	t.Logf("head event delivered %s after the link came up (backoff had %s left)",
		time.Since(linkUp).Round(time.Millisecond), time.Until(now.Add(5*time.Minute)).Round(time.Second))
	if err := srv.WaitAccepted(ctx, 3); err != nil {
		t.Fatal(err)
	}
}

func waitKind(t *testing.T, changes <-chan netwatch.Change, kind string) {
	t.Helper()
	for {
		select {
		case c := <-changes:
			if c.Kind == kind {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s change", kind)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
