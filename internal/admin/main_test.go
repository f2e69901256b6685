package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/outbox"
)

const envPing = "ADMIN_TEST_PING"

// childResult is what a child started as another user reports about its
// request to the daemon.
type childResult struct {
	UID        int    `json:"uid"`
	PID        int    `json:"pid"`
	Err        string `json:"err"`
	Refused    bool   `json:"refused"`
	Permission bool   `json:"permission"`
	NoDaemon   bool   `json:"no_daemon"`
	Served     int    `json:"served"` // records the daemon listed
}

func TestMain(m *testing.M) {
	admintest.ChildMain()
	if sock := os.Getenv(envPing); sock != "" {
		c := admin.Dial(sock)
		res := childResult{UID: os.Getuid()}
		var err error
		if res.PID, err = c.Ping(context.Background()); err == nil {
			var recs []outbox.Record
			recs, _, err = c.Outbox(context.Background()).List("", 0, 100)
			res.Served = len(recs)
		}
		if err != nil {
			res.Err = err.Error()
			res.Refused = errors.Is(err, admin.ErrRefused)
			res.Permission = errors.Is(err, fs.ErrPermission)
			res.NoDaemon = errors.Is(err, admin.ErrNoDaemon)
		}
		json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
