package meter

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// This file is the only one that knows github.com/tarm/serial: swap the
// library here and nothing else changes.

// Port defaults: the meter link runs at 9600 8N1.
const (
	DefaultBaud        = 9600
	DefaultReadTimeout = 200 * time.Millisecond
)

// PortConfig says how to open the serial device.
type PortConfig struct {
	Device   string // e.g. /dev/ttyS1
	Baud     int    // 0 means DefaultBaud
	Parity   string // "N", "E", "O" (or "none", "even", "odd"); "" means none
	StopBits int    // 1 or 2; 0 means 1
	// ReadTimeout bounds each wait of the driver for bytes (VTIME, at most
	// 25.5 s, 0.1 s granularity). 0 means DefaultReadTimeout. The port's Read
	// still blocks until bytes arrive: the timeout only bounds how long a
	// Close from another goroutine waits for a Read to notice it.
	ReadTimeout time.Duration
}

// OpenSerial opens the device for the meter link, 8 data bits, raw mode,
// and takes it for this process alone: an flock (a second agent gets
// ErrPortBusy) and TIOCEXCL (other opens fail with EBUSY).
//
// Read on the returned port blocks until bytes arrive, returns
// ErrPortHangup when the device goes away (a USB adapter unplugged, the
// master of a pseudo-terminal closed) and ErrPortClosed once Close was
// called; it never returns 0 bytes with a nil error, and never spins.
// Close may take up to ReadTimeout while a Read is in flight.
func OpenSerial(c PortConfig) (io.ReadWriteCloser, error) {
	cfg, err := serialConfig(c)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", c.Device, err)
	}
	lock, err := lockDevice(c.Device)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", c.Device, err)
	}
	p, err := serial.OpenPort(cfg)
	if err != nil {
		unix.Close(lock)
		return nil, fmt.Errorf("open %s: %w", c.Device, err)
	}
	// Exclusive from now on. Best effort: root ignores it anyway, the
	// flock is what keeps a second agent out.
	_ = unix.IoctlSetInt(lock, unix.TIOCEXCL, 0)
	return &serialPort{port: p, lock: lock, name: c.Device, timeout: cfg.ReadTimeout}, nil
}

func serialConfig(c PortConfig) (*serial.Config, error) {
	cfg := &serial.Config{Name: c.Device, Baud: c.Baud, Size: 8, ReadTimeout: c.ReadTimeout}
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	// VTIME counts tenths of a second.
	cfg.ReadTimeout = min(max(cfg.ReadTimeout, 100*time.Millisecond), 25500*time.Millisecond)
	switch strings.ToLower(c.Parity) {
	case "", "n", "none":
		cfg.Parity = serial.ParityNone
	case "e", "even":
		cfg.Parity = serial.ParityEven
	case "o", "odd":
		cfg.Parity = serial.ParityOdd
	default:
		return nil, fmt.Errorf("parity %q: %w", c.Parity, ErrPortConfig)
	}
	switch c.StopBits {
	case 0, 1:
		cfg.StopBits = serial.Stop1
	case 2:
		cfg.StopBits = serial.Stop2
	default:
		return nil, fmt.Errorf("stop bits %d: %w", c.StopBits, ErrPortConfig)
	}
	switch cfg.Baud {
	case 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200:
	default:
		return nil, fmt.Errorf("baud %d: %w", cfg.Baud, ErrPortConfig)
	}
	return cfg, nil
}

// lockDevice opens a second descriptor on the device and flocks it.
func lockDevice(name string) (int, error) {
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return -1, ErrPortBusy
		}
		return -1, fmt.Errorf("lock: %w", err)
	}
	return fd, nil
}

// serialPort adapts tarm/serial to the link. On Linux tarm opens the tty
// with VMIN=0, VTIME=timeout: a read that times out returns 0 bytes, which
// os.File reports as io.EOF. A hung-up tty returns 0 bytes at once, every
// time. serialPort tells the two apart by how long the read took.
type serialPort struct {
	port    *serial.Port
	lock    int
	name    string
	timeout time.Duration

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// quickZeroReads is how many reads in a row may return nothing at once
// before the port counts as hung up.
const quickZeroReads = 3

func (s *serialPort) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	quick := 0
	for {
		if s.closed.Load() {
			return 0, ErrPortClosed
		}
		start := time.Now()
		n, err := s.port.Read(b)
		if n > 0 {
			return n, nil
		}
		if s.closed.Load() {
			return 0, ErrPortClosed
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err // an *os.PathError naming the device, e.g. EIO
		}
		if time.Since(start) >= s.timeout/2 {
			quick = 0 // a timeout: keep waiting
			continue
		}
		if quick++; quick >= quickZeroReads {
			return 0, fmt.Errorf("read %s: %w", s.name, ErrPortHangup)
		}
	}
}

func (s *serialPort) Write(b []byte) (int, error) {
	return s.port.Write(b) // errors are *os.PathError naming the device
}

// Close closes the port; a Read in flight returns ErrPortClosed within
// the read timeout.
func (s *serialPort) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		_ = unix.IoctlSetInt(s.lock, unix.TIOCNXCL, 0)
		s.closeErr = s.port.Close()
		unix.Close(s.lock)
	})
	return s.closeErr
}
