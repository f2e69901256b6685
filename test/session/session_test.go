// Package session runs an integrator's first session from the README on
// the built binary: `sim` sets up a bench, the agent runs from the config it
// wrote, and the technician's commands watch a sign-in go out, a sign-out
// wait out an outage and drain when the endpoint returns; then SIGTERM.
package session

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taxi-agent/internal/testsupport"
	"taxi-agent/test/harness"
)

var bin string

func TestMain(m *testing.M) {
	harness.Main(m, false, &bin)
}

// proc is a long-running command whose output the test reads.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { p.cmd.Wait(); w.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", name, strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends sig and waits for the exit status.
func (p *proc) stop(t *testing.T, sig os.Signal, within time.Duration) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s of %v", p.cmd.Path, within, sig)
		return -1
	}
}

// command runs a short command line as printed by sim and returns its
// stdout; it fails the test on a non-zero exit.
func command(t *testing.T, line string) string {
	t.Helper()
	out, err := try(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return out
}

// try runs a short command line and returns its stdout, or an error with
// its exit status and output.
func try(line string) (string, error) {
	f := strings.Fields(line)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(f[0], f[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// printed returns the command sim printed after label, e.g. "Run the agent:".
func printed(out, label string) string {
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, label); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

type record struct {
	ID        uint64 `json:"id"`
	State     string `json:"state"`
	EventType string `json:"event_type"`
	Attempts  int    `json:"attempts"`
	LastError *struct {
		Err string `json:"error"`
	} `json:"last_error"`
}

func records(t *testing.T, ls string) []record {
	t.Helper()
	var out []record
	for _, l := range strings.Split(strings.TrimSpace(command(t, ls+" -json")), "\n") {
		if l == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%s -json: %q: %v", ls, l, err)
		}
		out = append(out, r)
	}
	return out
}

func states(rs []record) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%s %s", r.EventType, r.State)
	}
	return strings.Join(s, ", ")
}

// deliveredLog matches the agent's log line for a delivery.
var deliveredLog = regexp.MustCompile(`msg="punch delivered" .*event_id=(\d+) .*attempts=(\d+)`)

func TestIntegratorSession(t *testing.T) {
	dir := t.TempDir()
	sim := start(t, bin, "sim", "-dir", dir)
	var runLine, statusLine, lsLine string
	testsupport.Eventually(t, 30*time.Second, func() string {
		out := sim.output()
		runLine, statusLine = printed(out, "Run the agent:"), printed(out, "Watch it:")
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, " outbox ls -config ") {
				lsLine = strings.TrimSpace(l)
			}
		}
		if runLine == "" || statusLine == "" || lsLine == "" {
			return "sim has not printed the commands to run and watch the agent:\n" + out
		}
		return ""
	})
	if want := bin + " run -config " + dir + "/agent.toml"; runLine != want {
		t.Fatalf("sim says to run %q, want %q", runLine, want)
	}
	ctl := bin + " sim -dir " + dir + " "

	f := strings.Fields(runLine)
	agent := start(t, f[0], f[1:]...)
	testsupport.Eventually(t, 30*time.Second, func() string {
		if out, err := try(statusLine); err != nil || !strings.Contains(out, "running, pid") {
			return fmt.Sprintf("status does not show the daemon running: %v\n%s", err, out)
		}
		return ""
	})

	// A driver signs in; the punch goes out.
	if out := command(t, ctl+"signin"); !strings.Contains(out, "the agent answered the request (SIGN_IN_REQUEST 0x00E0)") ||
		!strings.Contains(out, "the meter reported SIGN_IN 0x00E1") {
		t.Fatalf("signin: %q, want the agent's answer to the request, then the meter's report", out)
	}
	testsupport.Eventually(t, 15*time.Second, func() string {
		if rs := records(t, lsLine); states(rs) != "SIGN_IN delivered" {
			return "outbox ls: " + states(rs) + "; want the sign-in delivered"
		}
		return ""
	})

	// WeChat Pay goes away; the sign-out is stored and waits.
	command(t, ctl+"endpoint down")
	if out := command(t, ctl+"signout"); !strings.Contains(out, "the agent answered the report (SIGN_OUT 0x00E4) 0x90") {
		t.Fatalf("signout: %q, want the agent's 0x90", out)
	}
	testsupport.Eventually(t, 15*time.Second, func() string {
		rs := records(t, lsLine)
		if states(rs) != "SIGN_IN delivered, SIGN_OUT pending" || rs[1].LastError == nil ||
			!strings.Contains(rs[1].LastError.Err, "connection refused") {
			return fmt.Sprintf("outbox ls: %s %+v; want the sign-out pending after a refused connection", states(rs), rs)
		}
		return ""
	})
	if out := command(t, statusLine); !strings.Contains(out, "1 pending") {
		t.Errorf("status during the outage does not count the pending sign-out:\n%s", out)
	}

	// It comes back; the queue drains.
	command(t, ctl+"endpoint up")
	testsupport.Eventually(t, 15*time.Second, func() string {
		if rs := records(t, lsLine); states(rs) != "SIGN_IN delivered, SIGN_OUT delivered" {
			return "outbox ls: " + states(rs) + "; want both delivered"
		}
		return ""
	})
	if out := command(t, statusLine); !strings.Contains(out, "0 pending, 0 dead, 2 delivered") {
		t.Errorf("status after the drain:\n%s", out)
	}
	// ATTEMPTS in outbox ls is the count the agent logged at delivery.
	logged := map[uint64]int{}
	for _, m := range deliveredLog.FindAllStringSubmatch(agent.output(), -1) {
		id, _ := strconv.ParseUint(m[1], 10, 64)
		logged[id], _ = strconv.Atoi(m[2])
	}
	rs := records(t, lsLine)
	for _, r := range rs {
		if n, ok := logged[r.ID]; !ok || n != r.Attempts {
			t.Errorf("record %d: outbox ls says %d attempt(s), the log said %d (logged: %v)", r.ID, r.Attempts, n, ok)
		}
	}
	if rs[0].Attempts != 1 || rs[1].Attempts < 2 {
		t.Errorf("attempts %d and %d; want 1 for the sign-in, 2 or more for the sign-out that waited out the outage", rs[0].Attempts, rs[1].Attempts)
	}
	if out := sim.output(); strings.Count(out, "accepted SIGN_") != 2 {
		t.Errorf("the fake endpoint accepted %d punches, want 2:\n%s", strings.Count(out, "accepted SIGN_"), out)
	}

	// The technician stops the agent, then the bench.
	if code := agent.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("agent exited %d on SIGTERM, want 0", code)
	}
	if !strings.Contains(agent.output(), "stopped cleanly") {
		t.Errorf("agent did not say it stopped cleanly:\n%s", agent.output())
	}
	if code := sim.stop(t, os.Interrupt, 15*time.Second); code != 0 {
		t.Errorf("sim exited %d on SIGINT, want 0", code)
	}
	if _, err := os.Stat(dir + "/agent.toml"); !os.IsNotExist(err) {
		t.Errorf("agent.toml outlives the bench and its pseudo-terminal: %v", err)
	}
}
