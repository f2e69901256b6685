package harness

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"taxi-agent/internal/metersim"
)

// Line is the serial cable of a test: a pseudo-terminal whose master the
// simulated meter holds and whose slave path the agent opens as its meter
// device.
type Line struct {
	*metersim.PTY
	// hold is a descriptor of the agent's end opened before any agent, so
	// that ReleaseExclusive can clear the TIOCEXCL a killed agent left
	// behind (the end stays open, so the flag is never reset by a last
	// close, and it refuses every later open by anyone but root).
	hold *os.File
}

// OpenLine opens a pseudo-terminal pair.
func OpenLine() (*Line, error) {
	p, err := metersim.OpenPTY()
	if err != nil {
		return nil, err
	}
	hold, err := os.OpenFile(p.Path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("hold %s: %w", p.Path, err)
	}
	return &Line{PTY: p, hold: hold}, nil
}

// ReleaseExclusive clears the exclusive mode of the agent's end, so that a
// restarted agent can open it again after a killed one.
func (l *Line) ReleaseExclusive() error {
	rc, err := l.hold.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), unix.TIOCNXCL, 0) }); err != nil {
		return err
	}
	if ioErr != nil {
		return fmt.Errorf("clear TIOCEXCL on %s: %w", l.Path, ioErr)
	}
	return nil
}

// Close closes both ends.
func (l *Line) Close() error {
	l.hold.Close()
	return l.PTY.Close()
}

// StartMeter opens a line and starts a simulated meter on its master. Both
// are closed when the test ends.
func StartMeter(tb testing.TB, opts metersim.Options) (*Line, *metersim.Meter) {
	tb.Helper()
	line, err := OpenLine()
	if err != nil {
		tb.Fatalf("open line: %v", err)
	}
	m := metersim.New(line.Master, opts)
	tb.Cleanup(func() {
		_ = m.Close() // closes the master
		_ = line.Close()
	})
	return line, m
}
