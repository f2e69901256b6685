package stamp

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Sources of a SyncState.
const (
	// SyncKernel: the kernel's NTP state, read with adjtimex(2) in
	// read-only mode, judged as systemd judges it.
	SyncKernel = "adjtimex"
	// SyncTimesyncd: the flag file systemd-timesyncd creates once it has
	// synchronised the clock, read when adjtimex is refused (a unit with
	// ProtectClock=yes).
	SyncTimesyncd = "timesyncd"
	// SyncUnknown: neither could be read; the clock counts as not
	// synchronised.
	SyncUnknown = "unknown"
)

// maxSyncError is the kernel's maximum error below which systemd counts
// the clock as synchronised (16 s, the kernel's NTP_PHASE_LIMIT). systemd
// ignores STA_UNSYNC: chrony leaves it set when it does not sync the RTC
// (systemd PR 13245, time-util.c ntp_synced).
const maxSyncError = 16 * time.Second

// timesyncdFlag exists while systemd-timesyncd holds the clock
// synchronised (since systemd 239).
const timesyncdFlag = "/run/systemd/timesync/synchronized"

// SyncState is whether the system says the wall clock is synchronised,
// and how it was learned.
type SyncState struct {
	Synchronized bool          `json:"synchronized"`
	Source       string        `json:"source"`              // SyncKernel, SyncTimesyncd or SyncUnknown
	MaxError     time.Duration `json:"max_error,omitempty"` // the kernel's maximum error, with SyncKernel
	// Err says why the kernel's state could not be read, if it could not.
	Err string `json:"error,omitempty"`
}

// SystemSync reads the synchronisation state of this machine's clock:
// the kernel's maximum error through a read-only adjtimex, or, where that
// is refused (EPERM under systemd's ProtectClock=yes, systemd issue
// 26413), timesyncd's flag file.
func SystemSync() SyncState {
	return readSync(kernelMaxError, timesyncdFlag)
}

func readSync(kernel func() (time.Duration, error), flag string) SyncState {
	maxErr, err := kernel()
	if err == nil {
		return SyncState{Synchronized: maxErr < maxSyncError, Source: SyncKernel, MaxError: maxErr}
	}
	st := SyncState{Source: SyncUnknown, Err: err.Error()}
	if _, ferr := os.Stat(flag); ferr == nil {
		st.Synchronized, st.Source = true, SyncTimesyncd
	} else if !errors.Is(ferr, os.ErrNotExist) {
		st.Err += "; " + ferr.Error()
	} else if _, derr := os.Stat(dirOf(flag)); derr == nil {
		st.Source = SyncTimesyncd // timesyncd runs and has not synchronised yet
	}
	return st
}

func dirOf(path string) string {
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return "/"
}

// kernelMaxError reads the kernel's maximum error without changing
// anything (modes 0).
func kernelMaxError() (time.Duration, error) {
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil {
		return 0, fmt.Errorf("read clock state with adjtimex: %w", err)
	}
	return time.Duration(tx.Maxerror) * time.Microsecond, nil
}
