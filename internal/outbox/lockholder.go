package outbox

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockHolder returns the pid of the process holding a lock on the file at
// path, as /proc/locks shows it, or 0 when it cannot tell. Lines look like
//
//	1: FLOCK  ADVISORY  WRITE 1234 fd:01:4196521 0 EOF
//
// where the sixth field is major:minor:inode, major and minor in hex.
func lockHolder(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	return findLockHolder(bufio.NewScanner(f), st.Ino, uint64(st.Dev))
}

func findLockHolder(sc *bufio.Scanner, ino, dev uint64) int {
	devMajor, devMinor := uint64(unix.Major(dev)), uint64(unix.Minor(dev))
	inodeOnly := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] == "->" {
			continue // a process waiting for the lock, not holding it
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 {
			continue
		}
		parts := strings.Split(fields[5], ":")
		if len(parts) != 3 {
			continue
		}
		if n, err := strconv.ParseUint(parts[2], 10, 64); err != nil || n != ino {
			continue
		}
		maj, err1 := strconv.ParseUint(parts[0], 16, 64)
		mnr, err2 := strconv.ParseUint(parts[1], 16, 64)
		if err1 == nil && err2 == nil && maj == devMajor && mnr == devMinor {
			return pid
		}
		if inodeOnly == 0 {
			// Overlay file systems may show another device number.
			inodeOnly = pid
		}
	}
	return inodeOnly
}
