package netwatch

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"taxi-agent/internal/testsupport"
)

// denySocketsOnThisThread installs a seccomp filter on the calling thread
// only (no TSYNC) that fails socket(2) with EAFNOSUPPORT, as a locked-down
// container would. The caller must have locked its thread and never unlock.
func denySocketsOnThisThread() error {
	arch := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64, "arm": unix.AUDIT_ARCH_ARM}[runtime.GOARCH]
	if arch == 0 {
		return errors.ErrUnsupported
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	filter := []unix.SockFilter{
		{Code: ld, K: 4}, // seccomp_data.arch
		{Code: jeq, K: arch, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ld, K: 0}, // seccomp_data.nr
		{Code: jeq, K: unix.SYS_SOCKET, Jf: 1},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	_, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return errno
	}
	return nil
}

// TestFallbackSeccomp runs the real watcher on a thread where a seccomp
// filter refuses sockets: Run must log the fallback once, report the cause,
// and return nil only when ctx is done.
func TestFallbackSeccomp(t *testing.T) {
	testsupport.SkipIfEmulated(t, "qemu-user refuses to install seccomp filters (PR_SET_SECCOMP gives EINVAL)")
	logs := &logRecorder{}
	w := New(Options{Logger: slog.New(logs), OnUp: func(Change) { t.Error("OnUp without netlink") }})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the filtered thread dies with the goroutine
		if err := denySocketsOnThisThread(); err != nil {
			done <- err
			return
		}
		done <- w.Run(ctx)
	}()
	select {
	case <-w.ready:
	case err := <-done:
		if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("skipping: cannot install a seccomp filter here: %v", err)
		}
		t.Fatalf("Run returned %v before ctx was done", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run neither fell back nor watched within 5s")
	}
	if err := w.Err(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("Err() = %v, want ErrUnavailable from EAFNOSUPPORT", err)
	}
	if n := logs.count("WARN netlink unavailable, falling back to backoff alone"); n != 1 {
		t.Errorf("fallback logged %d times, want once", n)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before ctx was done", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}
