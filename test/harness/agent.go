package harness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Agent is one run of the agent binary, with systemd's notify socket
// stood in for by a unixgram listener of our own.
type Agent struct {
	Cmd        *exec.Cmd
	Started    time.Time // just before exec
	StderrPath string    // stdout and stderr of the process

	notifyDir string
	notify    *net.UnixConn

	ready     chan struct{} // closed at READY=1
	readyAt   time.Time
	exited    chan struct{} // closed when the process has been reaped
	exitState *os.ProcessState

	mu     sync.Mutex
	states []string
}

// Errors of an agent's life.
var (
	// ErrExited means the agent exited while it was expected to run.
	ErrExited = errors.New("agent exited")
	// ErrTimeout means the agent did not do in time what was expected.
	ErrTimeout = errors.New("agent timed out")
)

// Launch starts bin with args, its output appended to stderrPath and
// NOTIFY_SOCKET pointing at a socket it listens on.
func Launch(bin string, args []string, stderrPath string) (*Agent, error) {
	out, err := os.OpenFile(stderrPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open agent log: %w", err)
	}
	defer out.Close()
	a, err := LaunchWriter(bin, args, out)
	if err != nil {
		return nil, err
	}
	a.StderrPath = stderrPath
	return a, nil
}

// LaunchWriter is Launch with the output going to w: a pipe, so that the
// agent's logs do not count as its own disk writes in a benchmark.
// Output then returns "".
func LaunchWriter(bin string, args []string, out io.Writer) (*Agent, error) {
	// sun_path holds 108 bytes: keep the socket out of deep test dirs.
	dir, err := os.MkdirTemp("", "nfy-")
	if err != nil {
		return nil, fmt.Errorf("make notify dir: %w", err)
	}
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listen on notify socket: %w", err)
	}

	cmd := exec.Command(bin, args...)
	// GORACE: a race-detector build otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd.Stdout, cmd.Stderr = out, out
	// If the test process dies, so does the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	a := &Agent{
		Cmd: cmd, notifyDir: dir, notify: conn,
		ready: make(chan struct{}), exited: make(chan struct{}),
	}
	a.Started = time.Now()
	if err := cmd.Start(); err != nil {
		conn.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start agent: %w", err)
	}
	go a.listen()
	go func() {
		_ = cmd.Wait()
		a.exitState = cmd.ProcessState
		close(a.exited)
	}()
	return a, nil
}

// listen records the notify states the agent sends.
func (a *Agent) listen() {
	buf := make([]byte, 4096)
	for {
		n, err := a.notify.Read(buf)
		if err != nil {
			return
		}
		at := time.Now()
		for line := range strings.Lines(string(buf[:n])) {
			state := strings.TrimSpace(line)
			a.mu.Lock()
			a.states = append(a.states, state)
			first := state == "READY=1" && a.readyAt.IsZero()
			if first {
				a.readyAt = at
			}
			a.mu.Unlock()
			if first {
				close(a.ready)
			}
		}
	}
}

// Pid is the process id.
func (a *Agent) Pid() int { return a.Cmd.Process.Pid }

// States returns the notify states received so far, in order.
func (a *Agent) States() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.states...)
}

// WaitReady waits for READY=1 and returns the time from exec to it.
func (a *Agent) WaitReady(timeout time.Duration) (time.Duration, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.ready:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.readyAt.Sub(a.Started), nil
	case <-a.exited:
		return 0, fmt.Errorf("wait for READY: %w before it: %s", ErrExited, a.exitState)
	case <-t.C:
		return 0, fmt.Errorf("wait for READY: %w after %s", ErrTimeout, timeout)
	}
}

// Running reports whether the process has not exited yet.
func (a *Agent) Running() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// Exited is closed once the process has exited and been reaped.
func (a *Agent) Exited() <-chan struct{} { return a.exited }

// Wait waits up to timeout for the process to exit and returns its exit
// status (-1 if a signal killed it).
func (a *Agent) Wait(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.exited:
		return a.exitState.ExitCode(), nil
	case <-t.C:
		return 0, fmt.Errorf("wait for exit: %w after %s", ErrTimeout, timeout)
	}
}

// Terminate sends SIGTERM, as systemd stops a service, and waits up to
// timeout for the exit. It returns the exit status and how long the exit
// took; past the timeout the process is killed and an error returned.
func (a *Agent) Terminate(timeout time.Duration) (code int, took time.Duration, err error) {
	start := time.Now()
	if err := a.Cmd.Process.Signal(syscall.SIGTERM); err != nil && a.Running() {
		return 0, 0, fmt.Errorf("send SIGTERM: %w", err)
	}
	code, err = a.Wait(timeout)
	took = time.Since(start)
	if err != nil {
		a.Kill()
		return 0, took, fmt.Errorf("after SIGTERM: %w", err)
	}
	return code, took, nil
}

// Kill sends SIGKILL, as a power cut would end the process, and waits
// until it is reaped.
func (a *Agent) Kill() {
	_ = a.Cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
}

// Close kills the process if it still runs and removes the notify socket.
func (a *Agent) Close() {
	if a.Running() {
		a.Kill()
	}
	a.notify.Close()
	os.RemoveAll(a.notifyDir)
}

// Output returns what the agent wrote to stdout and stderr, if they went
// to a file.
func (a *Agent) Output() string {
	if a.StderrPath == "" {
		return ""
	}
	b, _ := os.ReadFile(a.StderrPath)
	return string(b)
}

// WaitOutput waits until the agent's output holds substr at least n
// times, as when a test must know that the agent itself has seen an
// answer (the fake records a punch before its answer is on the wire).
func (a *Agent) WaitOutput(substr string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Count(a.Output(), substr) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %d× %q in the agent's output: %w after %s", n, substr, ErrTimeout, timeout)
		}
		select {
		case <-a.exited:
			if strings.Count(a.Output(), substr) >= n {
				return nil
			}
			return fmt.Errorf("wait for %d× %q in the agent's output: %w", n, substr, ErrExited)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
