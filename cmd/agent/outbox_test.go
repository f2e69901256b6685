package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"taxi-agent/internal/admin/admintest"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/testsupport"
)

const envArgs = "AGENT_TEST_ARGS"

// TestMain also runs the CLI in a child process (AGENT_TEST_ARGS), so a
// test can run it as another user, and holds outbox locks for others.
func TestMain(m *testing.M) {
	admintest.ChildMain()
	if a := os.Getenv(envArgs); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		os.Exit(exitCode(run(context.Background(), args, os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(m.Run())
}

// agentEnv is a terminal as the technician finds it: a config, an outbox
// file with records in every state, and a daemon that runs or not.
type agentEnv struct {
	name    string
	config  string
	socket  string
	outbox  string
	running *outbox.Outbox // the daemon's open outbox; nil when stopped
}

// newEnv builds a terminal in a short world-readable directory. With
// running, a daemon-like server (the real admin server over the real
// outbox, fake meter and uploader status) serves the socket.
func newEnv(t *testing.T, running bool) *agentEnv {
	t.Helper()
	dir := admintest.ShortTempDir(t)
	e := &agentEnv{name: "stopped", socket: filepath.Join(dir, "admin.sock"), outbox: filepath.Join(dir, "outbox.db")}
	if running {
		e.name = "running"
		e.running = admintest.OpenOutbox(t, e.outbox)
		admintest.Fill(t, e.running)
		sock := admintest.Serve(t, &admintest.Backend{Store: e.running, StatusFunc: fakeStatus}, nil)
		e.socket = sock
	} else {
		admintest.FillFile(t, e.outbox)
	}
	e.config = filepath.Join(dir, "agent.toml")
	body := fmt.Sprintf("[vehicle]\nplate_number = %q\nregion_id = 440300\n[meter]\ndevice = \"/dev/ttyS1\"\n"+
		"[outbox]\npath = %q\nmax_size_mib = 8\n[admin]\nsocket = %q\n", admintest.Plate, e.outbox, e.socket)
	if err := os.WriteFile(e.config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// both runs fn against a running and a stopped daemon.
func both(t *testing.T, fn func(t *testing.T, e *agentEnv)) {
	for _, running := range []bool{true, false} {
		name := map[bool]string{true: "running", false: "stopped"}[running]
		t.Run(name, func(t *testing.T) { fn(t, newEnv(t, running)) })
	}
}

// runCLI runs `agent args…` in process and returns what it wrote.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// record reads a record the way the state is after the command: from the
// daemon's outbox, or from the file.
func (e *agentEnv) record(t *testing.T, id uint64) (outbox.Record, error) {
	t.Helper()
	if e.running != nil {
		return e.running.Get(id)
	}
	ob, err := outbox.Open(e.outbox, outbox.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	return ob.Get(id)
}

// checkNote checks that a command without a daemon says so, and one with
// a daemon does not.
func (e *agentEnv) checkNote(t *testing.T, stderr string) {
	t.Helper()
	note := "note: daemon not running (no answer on " + e.socket + ")"
	if got := strings.Contains(stderr, note); got != (e.running == nil) {
		t.Errorf("%s daemon: stderr %q, note shown: %v", e.name, stderr, got)
	}
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func TestOutboxLsText(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, errOut, err := runCLI(t, "outbox", "ls", "-config", e.config)
		if err != nil {
			t.Fatalf("ls: %v\n%s", err, errOut)
		}
		e.checkNote(t, errOut)
		ls := lines(out)
		if len(ls) != 6 || !strings.HasPrefix(ls[0], "ID") || !strings.Contains(ls[0], "DRIVER LICENCE") {
			t.Fatalf("want a header and 5 rows:\n%s", out)
		}
		// Columns line up: every row's licence starts where the header's column does.
		col := strings.Index(ls[0], "DRIVER LICENCE")
		for i, want := range []struct{ id, state, licence, err string }{
			{"1", "delivered", admintest.LicenceA, ""},
			{"2", "delivered", admintest.LicenceA, ""},
			{"3", "dead", admintest.LicenceB, "HTTP 400 PARAM_ERROR " + admintest.DeadMessage},
			{"4", "pending", admintest.LicenceC, "HTTP 503 SYSTEM_ERROR"},
			{"5", "pending", admintest.LicenceC, "after 4"},
		} {
			row := ls[i+1]
			f := strings.Fields(row)
			if f[0] != want.id || f[1] != want.state || !strings.Contains(row, want.err) {
				t.Errorf("row %d: %q, want id %s %s with %q", i+1, row, want.id, want.state, want.err)
			}
			if !strings.HasPrefix(string([]rune(row)[len([]rune(ls[0][:col])):]), want.licence) {
				t.Errorf("row %d: licence %s not whole or not aligned:\n%s\n%s", i+1, want.licence, ls[0], row)
			}
		}

		out, errOut, err = runCLI(t, "outbox", "ls", "-config", e.config, "-limit", "2")
		if err != nil || len(lines(out)) != 3 || !strings.Contains(errOut, "'agent outbox ls -config "+e.config+" -limit 2 -after 2'") {
			t.Errorf("ls -limit 2: %v\n%s\n%s", err, out, errOut)
		}
		out, _, err = runCLI(t, "outbox", "ls", "-config", e.config, "-after", "2", "-limit", "2")
		if ls := lines(out); err != nil || len(ls) != 3 || !strings.HasPrefix(ls[1], "3 ") || !strings.HasPrefix(ls[2], "4 ") {
			t.Errorf("ls -after 2 -limit 2: %v\n%s", err, out)
		}
		out, _, err = runCLI(t, "outbox", "ls", "-config", e.config, "-state", "dead")
		if ls := lines(out); err != nil || len(ls) != 2 || !strings.HasPrefix(ls[1], "3 ") {
			t.Errorf("ls -state dead: %v\n%s", err, out)
		}
	})
}

func TestOutboxLsJSON(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, errOut, err := runCLI(t, "outbox", "ls", "-config", e.config, "-json")
		if err != nil {
			t.Fatalf("ls -json: %v\n%s", err, errOut)
		}
		ls := lines(out)
		if len(ls) != 5 {
			t.Fatalf("want 5 JSON lines:\n%s", out)
		}
		for i, l := range ls {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %d is not JSON: %q", i+1, l)
			}
			for _, k := range []string{"id", "state", "event_type", "driver_license", "plate_number", "event_time", "attempts", "last_error"} {
				if _, ok := m[k]; !ok {
					t.Errorf("line %d has no %q: %s", i+1, k, l)
				}
			}
			if m["id"] != float64(i+1) || m["plate_number"] != admintest.Plate {
				t.Errorf("line %d: %s", i+1, l)
			}
		}
		var dead recordJSON
		out, _, err = runCLI(t, "outbox", "ls", "-config", e.config, "-json", "-state", "dead")
		if err != nil || len(lines(out)) != 1 || json.Unmarshal([]byte(out), &dead) != nil {
			t.Fatalf("ls -json -state dead: %v\n%s", err, out)
		}
		if dead.ID != 3 || dead.DriverLicense != admintest.LicenceB || dead.LastError == nil ||
			dead.LastError.Code != "PARAM_ERROR" || dead.LastError.RequestID != admintest.DeadRequestID {
			t.Errorf("dead record: %+v", dead)
		}
		if _, _, err := runCLI(t, "outbox", "ls", "-config", e.config, "-state", "asleep"); !errors.Is(err, errUsage) {
			t.Errorf("ls -state asleep: %v, want a usage error", err)
		}
	})
}

func TestOutboxShow(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		// Flags may follow the id, as technicians type them.
		out, errOut, err := runCLI(t, "outbox", "show", "3", "-config", e.config)
		if err != nil {
			t.Fatalf("show: %v\n%s", err, errOut)
		}
		for _, want := range []string{"record          3", "state           dead", "driver licence  " + admintest.LicenceB,
			"plate           " + admintest.Plate, "dead because    rejected by WeChat Pay: 400 PARAM_ERROR", "attempts        1",
			"  HTTP status   400", "  code          PARAM_ERROR", "  message       " + admintest.DeadMessage,
			"  Request-ID    " + admintest.DeadRequestID, "event time      2026-11-28T10:32:00.000+08:00",
			"received        2026-11-28 10:32:00"} {
			if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+" ") {
				t.Errorf("show 3 lacks %q:\n%s", want, out)
			}
		}
		out, _, err = runCLI(t, "outbox", "show", "-config", e.config, "-json", "4")
		var r recordJSON
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.ID != 4 || r.Attempts != 2 || r.NextAttempt == nil ||
			r.LastError.RequestID != admintest.RetryRequest {
			t.Errorf("show -json 4: %v\n%s", err, out)
		}
		_, _, err = runCLI(t, "outbox", "show", "-config", e.config, "99")
		if err == nil || !strings.HasPrefix(err.Error(), "no record 99 in the outbox") {
			t.Errorf("show 99: %v", err)
		}
		if _, _, err := runCLI(t, "outbox", "show", "-config", e.config, "three"); err == nil || !strings.Contains(err.Error(), "not a record id") {
			t.Errorf("show three: %v", err)
		}
	})
}

func TestOutboxRetry(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		_, _, err := runCLI(t, "outbox", "retry", "-config", e.config, "4")
		if err == nil || err.Error() != "record 4 is pending, not dead: only dead records can be retried" {
			t.Errorf("retry of a pending record: %v", err)
		}
		out, errOut, err := runCLI(t, "outbox", "retry", "-config", e.config, "3")
		if err != nil || !strings.HasPrefix(out, "record 3 moved back to pending; the agent sends it") {
			t.Fatalf("retry 3: %v\n%s%s", err, out, errOut)
		}
		if r, err := e.record(t, 3); err != nil || r.State != outbox.Pending {
			t.Errorf("after retry record 3 is %s (%v)", r.State, err)
		}
		out, _, err = runCLI(t, "outbox", "retry", "-config", e.config, "-all-dead")
		if err != nil || out != "no dead records\n" {
			t.Errorf("retry -all-dead with none dead: %v %q", err, out)
		}
		if _, _, err := runCLI(t, "outbox", "retry", "-config", e.config, "-all-dead", "3"); !errors.Is(err, errUsage) {
			t.Errorf("retry with an id and -all-dead: %v, want a usage error", err)
		}
	})
}

func TestOutboxPurge(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, errOut, err := runCLI(t, "outbox", "purge", "-config", e.config, "3")
		if !errors.Is(err, errUsage) || out != "" ||
			!strings.Contains(errOut, "purge deletes for good: record 3, SIGN_IN of driver "+admintest.LicenceB) ||
			!strings.Contains(errOut, "not deleted: add -yes to confirm") {
			t.Fatalf("purge without -yes: %v\nstdout %q\nstderr %q", err, out, errOut)
		}
		if r, err := e.record(t, 3); err != nil || r.State != outbox.Dead {
			t.Fatalf("purge without -yes touched record 3: %v %v", r.State, err)
		}
		_, errOut, err = runCLI(t, "outbox", "purge", "-config", e.config, "-all-dead")
		if !errors.Is(err, errUsage) || !strings.Contains(errOut, "purge deletes for good: 1 dead record(s) ('agent outbox ls -config "+e.config+" -state dead' lists them)") {
			t.Errorf("purge -all-dead without -yes: %v %q", err, errOut)
		}
		_, _, err = runCLI(t, "outbox", "purge", "-config", e.config, "-yes", "1")
		if err == nil || err.Error() != "record 1 is delivered, not dead: only dead records can be purged" {
			t.Errorf("purge of a delivered record: %v", err)
		}
		out, _, err = runCLI(t, "outbox", "purge", "-config", e.config, "3", "-yes")
		if err != nil || out != "record 3 deleted\n" {
			t.Fatalf("purge 3 -yes: %v %q", err, out)
		}
		if _, err := e.record(t, 3); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("record 3 still there: %v", err)
		}
	})
}

func TestOutboxPurgeAllDead(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, _, err := runCLI(t, "outbox", "purge", "-config", e.config, "-all-dead", "-yes")
		if err != nil || out != "1 dead record(s) deleted\n" {
			t.Fatalf("purge -all-dead -yes: %v %q", err, out)
		}
		_, errOut, err := runCLI(t, "outbox", "purge", "-config", e.config, "-all-dead")
		if err != nil || !strings.Contains(errOut, "no dead records: nothing to purge") {
			t.Errorf("purge -all-dead with none left: %v %q", err, errOut)
		}
	})
}

func TestOutboxExport(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, errOut, err := runCLI(t, "outbox", "export", "-config", e.config)
		if err != nil || !strings.Contains(errOut, "exported 5 record(s)") {
			t.Fatalf("export: %v %q", err, errOut)
		}
		ls := lines(out)
		if len(ls) != 5 {
			t.Fatalf("export jsonl: want 5 lines:\n%s", out)
		}
		for i, l := range ls {
			var r recordJSON
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.ID != uint64(i+1) || r.DriverLicense == "" || r.Identity == "" {
				t.Errorf("jsonl line %d: %q (%v)", i+1, l, err)
			}
		}

		out, _, err = runCLI(t, "outbox", "export", "-config", e.config, "-format", "csv")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 6 {
			t.Fatalf("csv: %v, %d rows:\n%s", err, len(rows), out)
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		dead := rows[3]
		if dead[col["id"]] != "3" || dead[col["state"]] != "dead" || dead[col["driver_license"]] != admintest.LicenceB ||
			dead[col["last_error_code"]] != "PARAM_ERROR" || dead[col["last_error_request_id"]] != admintest.DeadRequestID ||
			dead[col["last_error_message"]] != admintest.DeadMessage || dead[col["plate_number"]] != admintest.Plate {
			t.Errorf("csv dead row: %q", dead)
		}
		if _, _, err := runCLI(t, "outbox", "export", "-config", e.config, "-format", "xml"); !errors.Is(err, errUsage) {
			t.Errorf("export -format xml: %v", err)
		}
	})
}

// TestOutboxLockedFile: no daemon answers, and another process holds the
// file (a daemon whose socket is gone, a second technician's retry).
func TestOutboxLockedFile(t *testing.T) {
	e := newEnv(t, false)
	pid := admintest.HoldLock(t, e.outbox)
	_, _, err := runCLI(t, "outbox", "ls", "-config", e.config)
	want := fmt.Sprintf("daemon not running (no answer on %s) and %s is locked by pid %d", e.socket, e.outbox, pid)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("ls on a locked file: %v\nwant %q", err, want)
	}
}

// runAs runs `agent args…` in a child process as uid:gid and returns its
// stderr and exit status.
func runAs(t *testing.T, uid, gid uint32, args ...string) (string, int) {
	t.Helper()
	bin := admintest.ChildBinary(t)
	a, _ := json.Marshal(args)
	cmd := testsupport.Command(bin, "-test.run=^$")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), envArgs+"="+string(a), admintest.NoExitDelay)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return errb.String(), cmd.ProcessState.ExitCode()
}

// TestWrongUser runs the CLI as nobody: the socket's mode keeps it out
// with the daemon running, the file's mode with the daemon stopped, and
// either way it is told which group to join.
func TestWrongUser(t *testing.T) {
	admintest.RequireRoot(t)
	for _, running := range []bool{true, false} {
		e := newEnv(t, running)
		stderr, code := runAs(t, 65534, 65534, "status", "-config", e.config)
		want := "agent: permission denied on " + e.socket + ": run as root or a member of group root\n"
		if !running {
			want = "agent: daemon not running (no answer on " + e.socket + ") and permission denied on " + e.outbox +
				": run as root or a member of group root\n"
		}
		if code != 1 || stderr != want {
			t.Errorf("%s daemon, status as nobody: exit %d\n%s\nwant %s", e.name, code, stderr, want)
		}
		if !running {
			// A config only the agent's group may read.
			if err := os.Chmod(e.config, 0o640); err != nil {
				t.Fatal(err)
			}
			stderr, code = runAs(t, 65534, 65534, "status", "-config", e.config)
			want = "agent: permission denied on " + e.config + ": run as root or a member of group root\n"
			if code != 1 || stderr != want {
				t.Errorf("status as nobody with a 0640 config: exit %d\n%s\nwant %s", code, stderr, want)
			}
			if err := os.Chmod(e.config, 0o644); err != nil {
				t.Fatal(err)
			}
			// In the file's group but not its owner: the file is 0600.
			stderr, code = runAs(t, 65534, 0, "outbox", "ls", "-config", e.config)
			want = "agent: daemon not running (no answer on " + e.socket + ") and permission denied on " + e.outbox +
				": run as root or as user root (group root is not enough)\n"
			if code != 1 || stderr != want {
				t.Errorf("ls as nobody:root on a 0600 file: exit %d\n%s\nwant %s", code, stderr, want)
			}
		}
		if running {
			// With the socket's mode loosened by mistake, the daemon itself refuses.
			if err := os.Chmod(e.socket, 0o666); err != nil {
				t.Fatal(err)
			}
			stderr, code = runAs(t, 65534, 65534, "outbox", "ls", "-config", e.config)
			want = "agent: refused by the daemon: uid 65534 (gid 65534) is not root, uid 0 or a member of group root\n"
			if code != 1 || stderr != want {
				t.Errorf("ls as nobody on a 0666 socket: exit %d\n%s\nwant %s", code, stderr, want)
			}
		}
	}
}

// TestPagingHintKeepsFlags: the next page's command line works as given,
// with the config, the state and the page size of this one.
func TestPagingHintKeepsFlags(t *testing.T) {
	e := newEnv(t, false)
	_, errOut, err := runCLI(t, "outbox", "ls", "-config", e.config, "-state", "delivered", "-limit", "1")
	want := "'agent outbox ls -config " + e.config + " -state delivered -limit 1 -after 1'"
	if err != nil || !strings.Contains(errOut, want) {
		t.Fatalf("ls -state delivered -limit 1: %v\n%s\nwant %s", err, errOut, want)
	}
	next := strings.Fields(strings.Trim(want, "'"))[1:]
	out, _, err := runCLI(t, next...)
	if ls := lines(out); err != nil || len(ls) != 2 || !strings.HasPrefix(ls[1], "2 ") {
		t.Errorf("the hinted next page: %v\n%s", err, out)
	}
}

func TestHintQuotesForTheShell(t *testing.T) {
	got := hint("outbox", "ls", "-config", "/mnt/my configs/agent.toml")
	if want := `'agent outbox ls -config "/mnt/my configs/agent.toml"'`; got != want {
		t.Errorf("hint = %s, want %s", got, want)
	}
}

// TestUsageErrorsNameTheValue: a usage mistake says which value is wrong,
// with exit status 2, before any file is opened.
func TestUsageErrorsNameTheValue(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"outbox", "export", "-format", "xml"}, `agent outbox export: -format "xml": use jsonl or csv`},
		{[]string{"outbox", "purge", "5", "6"}, `agent outbox purge: unexpected argument "6": give one record ID or -all-dead`},
		{[]string{"outbox", "purge", "5", "6", "-yes"}, `agent outbox purge: unexpected argument "6": give one record ID or -all-dead`},
		{[]string{"outbox", "retry", "7", "-all-dead"}, `agent outbox retry: record 7 and -all-dead: give one or the other`},
		{[]string{"outbox", "retry"}, `agent outbox retry: no record: give a record ID or -all-dead`},
		{[]string{"outbox", "ls", "-state", "weird"}, `agent outbox ls: -state "weird": use pending, dead or delivered`},
		{[]string{"outbox", "ls", "-limit", "-3"}, `agent outbox ls: -limit -3: use 0 (all) or a positive number`},
	} {
		_, errOut, err := runCLI(t, append(tt.args, "-config", "/nonexistent/agent.toml")...)
		if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(errOut, tt.want+"\n") {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestBriefError(t *testing.T) {
	long := strings.Repeat("x", 80) + ": connection refused"
	for _, c := range []struct {
		in   *outbox.AttemptError
		want string
	}{
		{nil, ""},
		{&outbox.AttemptError{Status: 400, Code: "PARAM_ERROR", Message: "参数错误", RequestID: "R"}, "HTTP 400 PARAM_ERROR 参数错误"},
		{&outbox.AttemptError{Err: `Post "https://api.mch.weixin.qq.com/v3/taxi-invoice/attendance/punch": dial tcp 1.2.3.4:443: i/o timeout`},
			"dial tcp 1.2.3.4:443: i/o timeout"},
		{&outbox.AttemptError{Err: long}, "…" + string([]rune(long)[len(long)-59:])},
		// A refused 204 says why it was refused, not a bare "HTTP 204".
		{&outbox.AttemptError{Status: 204, Err: "verify answer: answer signature does not verify: crypto/rsa: verification error"},
			"HTTP 204: answer signature does not verify: crypto/rsa: ver…"},
		{&outbox.AttemptError{Status: 204, Err: "verify answer: answer is not signed"}, "HTTP 204: answer is not signed"},
	} {
		if got := briefError(c.in); got != c.want {
			t.Errorf("briefError(%+v) = %q, want %q", c.in, got, c.want)
		}
	}
}
