package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/uploader"
	"taxi-agent/internal/wechatpay"
)

// fakeStatus is the daemon's status apart from the outbox (which the
// fake backend reads from the real file): a meter link that is alive with
// a signed-in driver, and an uploader retrying after a 503.
func fakeStatus(context.Context) (admin.Status, error) {
	now := time.Now()
	st := admin.Status{
		PID:       os.Getpid(),
		StartedAt: now.Add(-3 * time.Hour),
		Uptime:    admin.Duration(3 * time.Hour),
		Clock:     admin.ClockStatus{Trusted: true, Now: now, TrustedAfter: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Meter: meter.LinkStats{
			Connected: true, ConnectedSince: now.Add(-3 * time.Hour), LastFrameAt: now.Add(-2 * time.Second),
			Heartbeat: &meter.HeartbeatStatus{At: now.Add(-2 * time.Second), State: meter.StateSignedIn, SignedIn: true,
				DriverLicence: admintest.LicenceC},
			Frames:    meter.FrameCounts{SignIn: 3, SignOut: 2, Heartbeat: 1200, SignInRequest: 1, Unknown: 7},
			Answers:   meter.AnswerCounts{OK: 5, Heartbeat: 1200, Request: 1},
			BadChecks: 2, Resyncs: 2, BytesDropped: 40, Opens: 1,
		},
	}
	st.Version.Version = "v0.9.1"
	// What the daemon's connectivity report holds (internal/daemon, netwatch).
	conn, _ := json.Marshal(map[string]any{
		"last_netlink_event": map[string]any{"at": now.Add(-5 * time.Minute), "kind": "default-route-removed", "interface": "wwan0", "up": false},
		"last_probe": map[string]any{"at": now.Add(-30 * time.Second), "addr": "api.mch.weixin.qq.com:443", "ok": false,
			"rtt": 0, "error": "dial tcp: lookup api.mch.weixin.qq.com: no such host"},
		"next_attempt": now.Add(4 * time.Minute), "current_backoff_seconds": 240,
	})
	st.Connectivity = conn
	fillUploader(&st, now)
	return st, nil
}

func TestStatusText(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, errOut, err := runCLI(t, "status", "-config", e.config)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, errOut)
		}
		want := []string{
			"outbox 2 pending (oldest received 2026-11-28 10:33:00, ",
			", 1 dead, 2 delivered\n",
			" " + e.outbox + ", ",
			"delivered last 2026-11-28 10:41:00 (",
			"! 1 dead record(s): 'agent outbox ls -state dead -config " + e.config + "', then retry or purge\n",
			"! events have waited over an hour",
		}
		if e.running != nil {
			// The daemon reports its own bound; without it, the config's.
			want = append(want, " KiB of 64.0 MiB\n",
				"daemon running, pid "+strconv.Itoa(os.Getpid())+", v0.9.1, up 3h00m (since ",
				"clock trusted, now ",
				"meter connected since ",
				", last frame 2s ago\n",
				" heartbeat 2s ago: signed_in, driver "+admintest.LicenceC+"\n",
				" frames in: 3 sign-in, 2 sign-out, 0 re-sent sign-out, 1200 heartbeat, 1 request, 7 other\n",
				" line errors: 2 bad check, 0 bad length, 0 missing end, 0 truncated, 40 bytes dropped\n",
			)
			want = append(want, uploaderText...)
			want = append(want, "network last change: default-route-removed on wwan0, 5m00s ago\n",
				" probe api.mch.weixin.qq.com:443: UNREACHABLE (dial tcp: lookup api.mch.weixin.qq.com: no such host), 30s ago\n")
		} else {
			want = append(want, " KiB of 8.0 MiB\n", "daemon NOT RUNNING (no answer on "+e.socket+"); the outbox below is read from its file\n",
				"! start it with 'systemctl start taxi-agent'")
		}
		flat := spaces.ReplaceAllString(out, " ") // the label column's width varies
		for _, w := range want {
			if !strings.Contains(flat, w) {
				t.Errorf("%s: status lacks %q:\n%s", e.name, w, out)
			}
		}
	})
}

var spaces = regexp.MustCompile(` {2,}`)

func TestStatusJSON(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, _, err := runCLI(t, "status", "-config", e.config, "-json")
		if err != nil {
			t.Fatal(err)
		}
		if len(lines(out)) != 1 {
			t.Fatalf("status -json is not one line:\n%s", out)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("status -json: %v\n%s", err, out)
		}
		for k, want := range map[string]string{"pending": "2", "dead": "1", "delivered": "2"} {
			if string(m[k]) != want {
				t.Errorf("%s = %s, want %s", k, m[k], want)
			}
		}
		var age int64
		if json.Unmarshal(m["oldest_pending_age_seconds"], &age) != nil || age < 3600 {
			t.Errorf("oldest_pending_age_seconds = %s", m["oldest_pending_age_seconds"])
		}
		var d daemonState
		if err := json.Unmarshal(m["daemon"], &d); err != nil || d.Running != (e.running != nil) || d.Socket != e.socket {
			t.Errorf("daemon = %s", m["daemon"])
		}
		var ob struct {
			FileSize int64 `json:"file_size"`
		}
		if json.Unmarshal(m["outbox"], &ob) != nil || ob.FileSize == 0 {
			t.Errorf("outbox = %s", m["outbox"])
		}
		_, hasMeter := m["meter"]
		if e.running == nil {
			if hasMeter || !strings.Contains(d.Error, "daemon not running") {
				t.Errorf("stopped daemon: %s", out)
			}
			return
		}
		var ms meter.LinkStats
		if json.Unmarshal(m["meter"], &ms) != nil || !ms.Connected || ms.Frames.Heartbeat != 1200 ||
			ms.Heartbeat == nil || ms.Heartbeat.DriverLicence != admintest.LicenceC {
			t.Errorf("meter = %s", m["meter"])
		}
		for _, k := range []string{"version", "uptime_seconds", "uploader", "clock"} {
			if _, ok := m[k]; !ok {
				t.Errorf("status -json has no %q: %s", k, out)
			}
		}
	})
}

// fillUploader sets the uploader part of the fake status: retrying the
// head after two 503s, one 429 earlier.
func fillUploader(st *admin.Status, now time.Time) {
	st.Uploader = uploader.Status{
		Running: true, HeadID: admintest.IDRetrying, ConsecutiveFailures: 2, NextAttempt: now.Add(4 * time.Minute),
		LastError: &uploader.LastError{EventID: admintest.IDRetrying, Kind: "server", AttemptError: outbox.AttemptError{
			At: now.Add(-time.Minute), Status: 503, Code: "SYSTEM_ERROR", Message: "系统繁忙", RequestID: admintest.RetryRequest}},
		Delivered: 2, Retried: 3, Throttled: 1, DeadLettered: 1, BytesSent: 10240, BytesReceived: 4096, Connections: 3,
		Auth: &uploader.AuthStatus{
			Keys:             []wechatpay.Key{{Kind: wechatpay.KindPublicKey, Serial: "PUB_KEY_ID_0101"}},
			AcceptSerial:     "PUB_KEY_ID_0101",
			ServerTime:       wechatpay.ServerTimeStatus{Known: true, OffsetSeconds: 600, LearnedAt: now.Add(-time.Minute), Answers: 3},
			CorrectedSigning: true,
		},
	}
}

// uploaderText is what status prints for fillUploader's status.
var uploaderText = []string{
	"uploader retrying event 4, next attempt in 4m00s (", "); 2 failed attempt(s) since the last delivery\n",
	"last error ", "(1m00s ago), event 4, server error: HTTP 503 SYSTEM_ERROR \"系统繁忙\" Request-ID " + admintest.RetryRequest + "\n",
	"since start: 2 delivered, 3 retried (1 rate-limited), 1 dead-lettered, 0 unverified answer(s)\n",
	"traffic: 10.0 KiB sent, 4.0 KiB received, 3 connection(s)\n",
	"answer keys 1: PUB_KEY_ID_0101; asking for PUB_KEY_ID_0101\n",
	"wechatpay time 10m0s ahead of this terminal's clock (learned 1m00s ago from 3 answer(s))\n",
	" SIGNING WITH WECHAT PAY'S TIME",
}

// TestStatusStoppedWithSpillFile: an agent stopped while events were
// held left its spill file; status with the agent stopped says how many
// events wait there (and a torn line), and that the next start stores them.
func TestStatusStoppedWithSpillFile(t *testing.T) {
	e := newEnv(t, false)
	js := `{"record":{"event":{"event_type":"SIGN_IN","driver_license":"42108319880906011X"},"identity":"SIGN_IN|42108319880906011X|20261130115000|7"},"arrived":"2026-11-30T03:50:00Z"}`
	good := fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(js), crc32.MakeTable(crc32.Castagnoli)), js)
	spill := e.outbox + ".held"
	if err := os.WriteFile(spill, []byte(good+good[:40]), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "status", "-config", e.config)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, errOut)
	}
	flat := spaces.ReplaceAllString(out, " ")
	for _, w := range []string{"held 1 event(s) in " + spill + ", not yet in the outbox, and 1 damaged line(s): the agent stores them when it starts\n",
		"! the agent stopped with held events; keep " + spill} {
		if !strings.Contains(flat, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	out, _, err = runCLI(t, "status", "-config", e.config, "-json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		HeldOnDisk []heldOnDisk `json:"held_on_disk"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.HeldOnDisk) != 1 ||
		rep.HeldOnDisk[0] != (heldOnDisk{SpillFile: spill, Events: 1, Damaged: 1}) {
		t.Fatalf("held_on_disk %+v (%v) in %s", rep.HeldOnDisk, err, out)
	}
}
