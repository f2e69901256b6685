package harness

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punchsim"
)

// ReadyTimeout bounds the wait for READY=1 after exec. A binary built
// with the race detector on a busy 2-core machine takes the longest.
const ReadyTimeout = 30 * time.Second

// RigOptions tune a Rig.
type RigOptions struct {
	Endpoint punchsim.Options // the fake's options; Addr is chosen freely if empty
	Meter    metersim.Options // the simulated meter's; AnswerTimeout defaults to 300 ms
	// Configure, if set, edits the config before it is written.
	Configure func(*config.Config)
}

// Rig is one terminal under test: the fake endpoint, a meter on a
// pseudo-terminal, a config file and the agent processes run with it.
type Rig struct {
	TB         testing.TB
	Bin        string
	Dir        string
	Endpoint   *punchsim.Server
	Line       *Line
	Meter      *metersim.Meter
	Config     config.Config
	ConfigPath string

	mu     sync.Mutex
	agents []*Agent
}

// NewRig starts the fake endpoint and the meter and writes the config; no
// agent runs yet. Everything is stopped and removed when the test ends,
// and the agents' logs are printed if it failed.
func NewRig(tb testing.TB, bin string, o RigOptions) *Rig {
	tb.Helper()
	if o.Meter.AnswerTimeout == 0 {
		o.Meter.AnswerTimeout = 300 * time.Millisecond
	}
	r := &Rig{TB: tb, Bin: bin, Dir: tb.TempDir()}
	r.Endpoint = StartEndpoint(tb, o.Endpoint)
	r.Line, r.Meter = StartMeter(tb, o.Meter)
	r.Config = NewConfig(r.Dir, r.Endpoint.Keys(), r.Endpoint.URL(), r.Line.Path)
	if o.Configure != nil {
		o.Configure(&r.Config)
	}
	r.ConfigPath = filepath.Join(r.Dir, "agent.toml")
	WriteConfig(tb, r.ConfigPath, r.Config)
	tb.Cleanup(r.cleanup)
	return r
}

// Launch starts an agent with the rig's config and does not wait for it.
func (r *Rig) Launch() *Agent {
	r.TB.Helper()
	r.mu.Lock()
	n := len(r.agents) + 1
	r.mu.Unlock()
	if err := r.Line.ReleaseExclusive(); err != nil {
		r.TB.Fatal(err)
	}
	a, err := Launch(r.Bin, []string{"run", "-config", r.ConfigPath}, filepath.Join(r.Dir, fmt.Sprintf("agent-%d.log", n)))
	if err != nil {
		r.TB.Fatal(err)
	}
	r.mu.Lock()
	r.agents = append(r.agents, a)
	r.mu.Unlock()
	return a
}

// Start starts an agent and waits for READY=1.
func (r *Rig) Start() *Agent {
	r.TB.Helper()
	a := r.Launch()
	if _, err := a.WaitReady(ReadyTimeout); err != nil {
		r.TB.Fatalf("agent %d: %v\n%s", a.Pid(), err, Tail(a.Output(), 80))
	}
	return a
}

// Stop sends SIGTERM and checks that the agent exits 0 within the drain
// deadline plus a margin for the race detector's slower exit.
func (r *Rig) Stop(a *Agent) time.Duration {
	r.TB.Helper()
	limit := r.Config.Uploader.DrainTimeout + 5*time.Second
	code, took, err := a.Terminate(limit)
	if err != nil {
		r.TB.Fatalf("stop agent %d: %v", a.Pid(), err)
	}
	if code != 0 {
		r.TB.Fatalf("agent %d exited %d after SIGTERM, want 0", a.Pid(), code)
	}
	return took
}

// Records reads every record of the outbox, the agent stopped.
func (r *Rig) Records() []outbox.Record {
	r.TB.Helper()
	return ReadRecords(r.TB, r.Config.Outbox.Path)
}

func (r *Rig) cleanup() {
	r.mu.Lock()
	agents := r.agents
	r.mu.Unlock()
	for _, a := range agents {
		a.Close()
	}
	if !r.TB.Failed() {
		return
	}
	// The last runs tell most; a crash suite starts hundreds.
	from := max(0, len(agents)-3)
	for i, a := range agents[from:] {
		r.TB.Logf("agent run %d of %d (pid %d, %s):\n%s", from+i+1, len(agents), a.Pid(), a.StderrPath, Tail(a.Output(), 120))
	}
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… %d lines before\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// WaitDelivered waits until the fake has accepted every event in acked,
// polling its record; duplicates do not count twice.
func (r *Rig) WaitDelivered(ctx context.Context, acked []Acked) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		tally := Reconcile(acked, r.Endpoint.Accepted())
		if len(tally.Lost) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for delivery: %w: %s", ctx.Err(), tally)
		case <-t.C:
		}
	}
}

// WaitDeliveredMoving is WaitDelivered for a backlog whose delivery takes
// as long as this machine's CPU makes it (thousands of signed punches
// under the race detector): it fails when the fake has accepted no new
// punch for stall, a stuck uploader, rather than at a fixed deadline; ctx
// still bounds the whole.
func (r *Rig) WaitDeliveredMoving(ctx context.Context, acked []Acked, stall time.Duration) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	last, lastAt := -1, time.Now()
	for {
		accepted := r.Endpoint.Accepted()
		tally := Reconcile(acked, accepted)
		if len(tally.Lost) == 0 {
			return nil
		}
		if n := len(accepted); n > last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > stall {
			return fmt.Errorf("wait for delivery: no punch accepted for %s: %s", stall, tally)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for delivery: %w: %s", ctx.Err(), tally)
		case <-t.C:
		}
	}
}

// Agents returns every agent the rig started, in order.
func (r *Rig) Agents() []*Agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Agent(nil), r.agents...)
}

// CLI runs `agent args… -config <the rig's config>` (a technician's
// command, through the daemon's socket when one runs) and returns its
// output; it fails the test if the command fails.
func (r *Rig) CLI(args ...string) string {
	r.TB.Helper()
	cmd := exec.Command(r.Bin, append(args, "-config", r.ConfigPath)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.TB.Fatalf("agent %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
