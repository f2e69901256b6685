package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// terminal is one agent set up as on a taxi: its config file, its outbox
// in the work directory on the disk under test, a pseudo-terminal for the
// meter and the fake endpoint on loopback.
type terminal struct {
	bin     string
	dir     string
	cfg     config.Config
	cfgPath string
	line    *harness.Line
	srv     *punchsim.Server
}

// newTerminal makes a terminal in a fresh directory under work, talking to
// srv. The uploader keeps the production defaults.
func newTerminal(bin, work, name string, srv *punchsim.Server) (*terminal, error) {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	line, err := harness.OpenLine()
	if err != nil {
		return nil, err
	}
	t := &terminal{bin: bin, dir: dir, line: line, srv: srv, cfgPath: filepath.Join(dir, "agent.toml")}
	t.cfg = harness.NewConfig(dir, srv.Keys(), srv.URL(), line.Path)
	t.cfg.Uploader = config.Default().Uploader
	t.cfg.Log.Level = "info"
	if err := harness.WriteConfigFile(t.cfgPath, t.cfg); err != nil {
		line.Close()
		return nil, err
	}
	return t, nil
}

func (t *terminal) close() {
	t.line.Close()
}

// start execs the agent, its logs going to a pipe, and waits for READY.
// It returns the agent, the log watcher and exec → READY.
func (t *terminal) start() (*harness.Agent, *logWatch, time.Duration, error) {
	if err := t.line.ReleaseExclusive(); err != nil {
		return nil, nil, 0, err
	}
	logs := newLogWatch()
	a, err := harness.LaunchWriter(t.bin, []string{"run", "-config", t.cfgPath}, logs)
	if err != nil {
		return nil, nil, 0, err
	}
	ready, err := a.WaitReady(2 * time.Minute)
	if err != nil {
		a.Close()
		return nil, nil, 0, fmt.Errorf("%w\n%s", err, logs.Tail())
	}
	return a, logs, ready, nil
}

// stop sends SIGTERM and checks the exit.
func stop(a *harness.Agent, logs *logWatch) error {
	defer a.Close()
	code, _, err := a.Terminate(time.Minute)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("agent exited %d\n%s", code, logs.Tail())
	}
	return nil
}
