package metersim

import (
	"errors"
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal standing in for the serial cable: the simulated
// meter holds Master, the agent opens Path like a serial device (with
// meter.OpenSerial, for example). The line is raw: every byte passes
// unchanged both ways.
type PTY struct {
	Master *os.File // the meter's end
	Path   string   // the agent's end, e.g. /dev/pts/3
	// slave is held open so that the master does not see a hangup while
	// the agent closes and reopens its end.
	slave *os.File
}

// OpenPTY opens a raw pseudo-terminal pair.
func OpenPTY() (*PTY, error) {
	ptmx, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	master, err := pollable(ptmx)
	if err != nil {
		slave.Close()
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := makeRaw(slave); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("make pty raw: %w", err)
	}
	return &PTY{Master: master, Path: slave.Name(), slave: slave}, nil
}

// Close closes both ends: the agent's port sees the line hang up, like a
// USB adapter pulled out.
func (p *PTY) Close() error {
	return errors.Join(p.Master.Close(), p.slave.Close())
}

// pollable returns a copy of f that the Go runtime polls, and closes f.
// pty.Open leaves the master in blocking mode (it calls Fd), where a Close
// from another goroutine does not interrupt a Read; a Meter's reader must
// stop when its line is closed.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var opErr error
	err = rc.Control(func(fd uintptr) {
		if nfd, opErr = unix.Dup(int(fd)); opErr == nil {
			unix.CloseOnExec(nfd)
			opErr = unix.SetNonblock(nfd, true)
		}
	})
	if err = errors.Join(err, opErr); err != nil {
		if nfd >= 0 {
			unix.Close(nfd)
		}
		return nil, err
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// makeRaw sets the terminal like cfmakeraw(3): 8 bits, no echo, no line
// editing, no translation of CR or NL, no flow control.
func makeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			opErr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		opErr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	return errors.Join(err, opErr)
}
