package powercut

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// VMConfig is how to boot the suite's VM.
type VMConfig struct {
	Kernel, Initrd string // vmlinuz and the initramfs
	Append         string // more kernel command line
	NBDSocket      string // the unix socket the virtual disk is served on
	MeterSocket    string // a unix socket listened on, for the VM's ttyS1
	Accel          string // "kvm" or "tcg"
	MemoryMiB      int
}

// VM is one boot of qemu. Its console (ttyS0) is read line by line.
type VM struct {
	cmd    *exec.Cmd
	exited chan struct{}

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced at each new line
}

// ErrVMExited means qemu exited while a line was awaited.
var ErrVMExited = errors.New("qemu exited")

// StartVM boots qemu with cfg.
func StartVM(cfg VMConfig) (*VM, error) {
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 256
	}
	args := []string{
		"-accel", cfg.Accel, "-m", fmt.Sprint(cfg.MemoryMiB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", cfg.Kernel, "-initrd", cfg.Initrd,
		"-append", "console=ttyS0 quiet panic=-1 " + cfg.Append,
		"-serial", "stdio", // ttyS0: the console
		"-serial", "unix:" + cfg.MeterSocket, // ttyS1: the meter
		// cache=writeback: the guest sees a volatile write cache and flushes
		// it; qemu passes the flushes on as NBD_CMD_FLUSH.
		"-drive", "file=nbd+unix:///?socket=" + cfg.NBDSocket + ",format=raw,if=virtio,cache=writeback",
		"-nic", "none",
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	v := &VM{cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			v.mu.Lock()
			v.lines = append(v.lines, strings.TrimRight(sc.Text(), "\r"))
			close(v.changed)
			v.changed = make(chan struct{})
			v.mu.Unlock()
		}
		_ = cmd.Wait()
		close(v.exited)
	}()
	return v, nil
}

// WaitLine waits for a console line, at index from or later, that starts
// with prefix, and returns it with its index.
func (v *VM) WaitLine(from int, prefix string, timeout time.Duration) (string, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		for i := from; i < len(v.lines); i++ {
			if strings.HasPrefix(v.lines[i], prefix) {
				l := v.lines[i]
				v.mu.Unlock()
				return l, i, nil
			}
		}
		from = len(v.lines)
		ch := v.changed
		v.mu.Unlock()
		select {
		case <-ch:
		case <-v.exited:
			// The reader has the last lines by now; look once more.
			v.mu.Lock()
			n := len(v.lines)
			v.mu.Unlock()
			if from == n {
				return "", 0, fmt.Errorf("wait for console line %q: %w", prefix, ErrVMExited)
			}
		case <-deadline.C:
			return "", 0, fmt.Errorf("wait for console line %q: none within %s", prefix, timeout)
		}
	}
}

// Lines returns the console lines from index from on.
func (v *VM) Lines(from int) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if from > len(v.lines) {
		return nil
	}
	return append([]string(nil), v.lines[from:]...)
}

// Kill ends qemu with SIGKILL, the power cut, and waits until it is reaped.
func (v *VM) Kill() {
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.exited
}

// Running reports whether qemu still runs.
func (v *VM) Running() bool {
	select {
	case <-v.exited:
		return false
	default:
		return true
	}
}
