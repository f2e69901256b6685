package admin_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/testsupport"
)

// runAs runs this test binary as uid:gid (plus groups) to ping the daemon
// on sock and list its records; see TestMain.
func runAs(t *testing.T, bin, sock string, uid, gid uint32, groups ...uint32) childResult {
	t.Helper()
	cmd := testsupport.Command(bin, "-test.run=^$")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), envPing+"="+sock, admintest.NoExitDelay)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child as uid %d: %v", uid, err)
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil || res.UID != int(uid) {
		t.Fatalf("child as uid %d said %q (%v)", uid, out, err)
	}
	return res
}

func serveFor(t *testing.T, uid, gid uint32, logs *logBuffer) string {
	t.Helper()
	sock := filepath.Join(admintest.ShortTempDir(t), "admin.sock")
	ln, err := admin.Listen(sock)
	must(t, err)
	ob := admintest.OpenOutbox(t, filepath.Join(t.TempDir(), "outbox.db"))
	admintest.Fill(t, ob)
	srv := admin.NewServerFor(&admintest.Backend{Store: ob}, logs.logger(), uid, gid)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestPeerCredentials runs clients as real other users against a daemon
// running as root, then as a daemon running as an unprivileged user.
func TestPeerCredentials(t *testing.T) {
	admintest.RequireRoot(t)
	bin := admintest.ChildBinary(t)
	const nobody, nogroup = 65534, 65534

	t.Run("socket mode keeps others out", func(t *testing.T) {
		logs := &logBuffer{}
		sock := serveFor(t, 0, 0, logs)
		res := runAs(t, bin, sock, nobody, nogroup)
		want := "permission denied on " + sock + ": run as root or a member of group root"
		if !res.Permission || res.Err != want {
			t.Fatalf("nobody on a 0660 root socket: %+v\nwant %q", res, want)
		}
	})

	t.Run("peer check holds with a loosened mode", func(t *testing.T) {
		logs := &logBuffer{}
		sock := serveFor(t, 0, 0, logs)
		must(t, os.Chmod(sock, 0o666)) // a mistake the peer check must survive
		res := runAs(t, bin, sock, nobody, nogroup)
		if !res.Refused || res.Served != 0 || !strings.Contains(res.Err, "uid 65534 (gid 65534) is not root, uid 0 or a member of group root") {
			t.Fatalf("nobody was not refused: %+v", res)
		}
		if l := logs.String(); !strings.Contains(l, "admin request refused") || !strings.Contains(l, "peer_uid=65534") {
			t.Errorf("refusal not logged:\n%s", l)
		}
		// A member of the daemon's group (supplementary) is served.
		if res := runAs(t, bin, sock, nobody, nogroup, 0); res.Err != "" || res.Served != 5 {
			t.Errorf("member of group root refused: %+v", res)
		}
		// Root is served.
		c := admin.Dial(sock)
		if _, err := c.Ping(context.Background()); err != nil {
			t.Errorf("root refused: %v", err)
		}
	})

	t.Run("unprivileged daemon", func(t *testing.T) {
		logs := &logBuffer{}
		const daemonUID, daemonGID = nobody, 54321
		sock := serveFor(t, daemonUID, daemonGID, logs)
		must(t, os.Chmod(sock, 0o666))
		if res := runAs(t, bin, sock, daemonUID, nogroup); res.Err != "" || res.Served != 5 {
			t.Errorf("the daemon's own uid refused: %+v", res)
		}
		if res := runAs(t, bin, sock, 1000, daemonGID); res.Err != "" || res.Served != 5 {
			t.Errorf("a user whose primary group is the daemon's refused: %+v", res)
		}
		if res := runAs(t, bin, sock, 1000, 1000); !res.Refused {
			t.Errorf("uid 1000 outside the daemon's group served: %+v", res)
		}
		if _, err := admin.Dial(sock).Ping(context.Background()); err != nil {
			t.Errorf("root refused by an unprivileged daemon: %v", err)
		}
	})
}
