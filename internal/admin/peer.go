package admin

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is who is on the other end of a unix socket connection, as the
// kernel recorded it at connect time (SO_PEERCRED, SO_PEERGROUPS).
type Peer struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups; nil if the kernel cannot tell
}

// String is the form used in logs and refusals.
func (p Peer) String() string {
	return fmt.Sprintf("pid %d uid %d gid %d groups %v", p.PID, p.UID, p.GID, p.Groups)
}

// peerOf reads the credentials of the process that connected c.
func peerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("read peer credentials: %T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", err)
	}
	var (
		p       Peer
		credErr error
	)
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			credErr = err
			return
		}
		p = Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
		// SO_PEERGROUPS (Linux 4.13+); without it only the primary group
		// counts, which fails closed.
		p.Groups, _ = peerGroups(int(fd))
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", err)
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS, growing the buffer when the kernel says
// ERANGE (it then reports the size it needs).
func peerGroups(fd int) ([]uint32, error) {
	groups := make([]uint32, 32)
	for {
		size := uint32(len(groups) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&groups[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0:
			return groups[:size/4], nil
		case errors.Is(errno, unix.ERANGE) && int(size/4) > len(groups):
			groups = make([]uint32, size/4)
		default:
			return nil, errno
		}
	}
}

// policy decides who may use the socket: root, the daemon's own user, and
// members (primary or supplementary) of the daemon's group. The socket's
// mode 0660 already keeps others out; this holds even if the mode is
// loosened by mistake.
type policy struct {
	uid, gid uint32
}

// allows reports whether p may use the socket.
func (pol policy) allows(p Peer) bool {
	return p.UID == 0 || p.UID == pol.uid || p.GID == pol.gid || slices.Contains(p.Groups, pol.gid)
}
