package meter_test

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
)

// openPTY opens a raw pseudo-terminal closed at the end of the test.
func openPTY(tb testing.TB) *metersim.PTY {
	tb.Helper()
	p, err := metersim.OpenPTY()
	if err != nil {
		tb.Skipf("no pseudo-terminal here: %v", err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func openSerial(tb testing.TB, path string) io.ReadWriteCloser {
	tb.Helper()
	port, err := meter.OpenSerial(meter.PortConfig{Device: path, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		tb.Fatalf("OpenSerial: %v", err)
	}
	tb.Cleanup(func() { port.Close() })
	return port
}

type readResult struct {
	b   []byte
	err error
}

func readAsync(port io.Reader, n int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		var got []byte
		buf := make([]byte, 512)
		for len(got) < n {
			k, err := port.Read(buf)
			got = append(got, buf[:k]...)
			if err != nil {
				ch <- readResult{got, err}
				return
			}
		}
		ch <- readResult{got, nil}
	}()
	return ch
}

func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestOpenSerialRaw sends every byte value both ways through tarm/serial
// and a pseudo-terminal: the line must be 8-bit clean, without CR/NL
// translation or echo.
func TestOpenSerialRaw(t *testing.T) {
	p := openPTY(t)
	port := openSerial(t, p.Path)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	got := readAsync(port, len(all))
	if _, err := p.Master.Write(all); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || !bytes.Equal(r.b, all) {
		t.Fatalf("port read %X, %v", r.b, r.err)
	}
	if _, err := port.Write(all); err != nil {
		t.Fatal(err)
	}
	if r := <-readAsync(p.Master, len(all)); r.err != nil || !bytes.Equal(r.b, all) {
		t.Fatalf("master read %X, %v", r.b, r.err)
	}
}

// TestOpenSerialWaitsAcrossTimeouts: a read timeout of the driver is not
// an end of file, and waiting does not burn the CPU.
func TestOpenSerialWaitsAcrossTimeouts(t *testing.T) {
	p := openPTY(t)
	port := openSerial(t, p.Path)
	got := readAsync(port, 3)
	cpu0, wall0 := cpuTime(t), time.Now()
	time.Sleep(450 * time.Millisecond) // four read timeouts
	select {
	case r := <-got:
		t.Fatalf("read returned %X, %v with no data", r.b, r.err)
	default:
	}
	cpu, wall := cpuTime(t)-cpu0, time.Since(wall0)
	if _, err := p.Master.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || string(r.b) != "abc" {
		t.Fatalf("read %q, %v", r.b, r.err)
	}
	// A spinning reader would use about one core for the whole wait.
	if cpu > wall/4 {
		t.Errorf("waiting %v used %v of CPU", wall, cpu)
	}
}

func TestOpenSerialHangup(t *testing.T) {
	p := openPTY(t)
	port := openSerial(t, p.Path)
	got := readAsync(port, 1)
	time.Sleep(50 * time.Millisecond)
	p.Close()
	select {
	case r := <-got:
		if r.err == nil || errors.Is(r.err, meter.ErrPortClosed) {
			t.Fatalf("read after hangup: %v, want a port failure", r.err)
		}
		t.Logf("hangup reads as: %v", r.err)
	case <-time.After(2 * time.Second):
		t.Fatal("read did not notice the hangup")
	}
}

func TestOpenSerialCloseUnblocksRead(t *testing.T) {
	p := openPTY(t)
	port := openSerial(t, p.Path)
	got := readAsync(port, 1)
	time.Sleep(50 * time.Millisecond)
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if !errors.Is(r.err, meter.ErrPortClosed) {
			t.Fatalf("read after Close: %v, want ErrPortClosed", r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock the read")
	}
}

func TestOpenSerialExclusive(t *testing.T) {
	p := openPTY(t)
	first, err := meter.OpenSerial(meter.PortConfig{Device: p.Path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := meter.OpenSerial(meter.PortConfig{Device: p.Path}); !errors.Is(err, meter.ErrPortBusy) {
		t.Fatalf("second open: %v, want ErrPortBusy", err)
	}
	first.Close()
	again, err := meter.OpenSerial(meter.PortConfig{Device: p.Path, Baud: 19200, Parity: "E", StopBits: 2})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	again.Close()
}

func TestOpenSerialConfig(t *testing.T) {
	p := openPTY(t)
	for _, c := range []meter.PortConfig{
		{Device: p.Path, Parity: "M"},
		{Device: p.Path, StopBits: 3},
		{Device: p.Path, Baud: 9601},
	} {
		if _, err := meter.OpenSerial(c); !errors.Is(err, meter.ErrPortConfig) {
			t.Errorf("%+v: %v, want ErrPortConfig", c, err)
		}
	}
	for _, parity := range []string{"", "N", "none", "O", "odd", "even"} {
		port, err := meter.OpenSerial(meter.PortConfig{Device: p.Path, Parity: parity})
		if err != nil {
			t.Errorf("parity %q: %v", parity, err)
			continue
		}
		port.Close()
	}
	if _, err := meter.OpenSerial(meter.PortConfig{Device: t.TempDir() + "/ttyNONE"}); err == nil {
		t.Error("opened a device that does not exist")
	}
}

// TestOpenSerialVHangup hangs the terminal up the way the kernel does when
// a USB adapter is unplugged: reads then return 0 bytes at once, forever,
// which must read as ErrPortHangup rather than as a timeout to wait out.
func TestOpenSerialVHangup(t *testing.T) {
	p := openPTY(t)
	port := openSerial(t, p.Path)
	got := readAsync(port, 1)
	time.Sleep(50 * time.Millisecond)
	if err := vhangup(p.Path); err != nil {
		t.Skipf("cannot hang up a terminal here: %v", err)
	}
	select {
	case r := <-got:
		if !errors.Is(r.err, meter.ErrPortHangup) {
			t.Fatalf("read after hangup: %v, want ErrPortHangup", r.err)
		}
		t.Logf("hangup reads as: %v", r.err)
	case <-time.After(2 * time.Second):
		t.Fatal("read did not notice the hangup")
	}
}

// vhangup hangs up the terminal at path (TIOCVHANGUP, needs CAP_SYS_ADMIN).
func vhangup(path string) error {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	const tiocvhangup = 0x5437
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tiocvhangup, 0); e != 0 {
		return e
	}
	return nil
}
