package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketMode is the mode of the admin socket: the daemon's user and group.
const SocketMode fs.FileMode = 0o660

// Listen creates the admin socket at path with mode 0660 and returns its
// listener. A socket left over from a daemon that is gone (nobody answers)
// is removed first; a socket a live daemon answers on is left alone
// (ErrSocketInUse), and so is anything that is not a socket
// (ErrNotSocket). A missing directory is created with mode 0750, for runs
// outside systemd, whose RuntimeDirectory normally provides it.
//
// Between bind and chmod the socket has the process umask's mode; connect
// needs write permission, which the usual umask 022 gives to nobody but
// the owner, and the server checks peer credentials on every request
// anyway.
func Listen(path string) (net.Listener, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set mode of %s: %w", path, err)
	}
	return ln, nil
}

// clearStale removes a socket at path that nobody answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen on %s: %w (%s)", path, ErrNotSocket, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: %w", path, ErrSocketInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
