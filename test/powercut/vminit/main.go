// Command vminit is PID 1 of the VMs of the test suites. It loads the
// kernel modules listed in /modules.order. With vminit.root=DEV on the
// kernel command line it then mounts DEV (ext4) and hands over to its
// /sbin/init, as an initramfs does (the systemd VM, test/systemdvm).
// Otherwise it is the power-cut suite's init: it mounts the virtual disk
// /dev/vda (ext4) on /data with the options of pc.mountopts= on the kernel
// command line, reports what the previous boot left there, then runs the
// agent. Everything goes to the console (ttyS0), one line per fact, each
// starting with "PC ":
//
//	PC files <name>…             the entries of /data
//	PC recs <type> <first>-<last> records of `agent outbox export`, in
//	                             order, as runs of consecutive licence
//	                             numbers (a record listed twice starts a
//	                             new run)
//	PC rec <type> <licence>      a record whose licence is not a number
//	PC export exit=<code> <msg>  how the export ended
//	PC held <type> <licence>     an event in the spill file (held: not yet
//	                             in the outbox; the agent stores it first)
//	PC run                       the agent is started
//	PC agent exit=<code>         the agent ended (it should not)
//	PC fail <msg>                the VM cannot do its part
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"taxi-agent/internal/daemon"
)

const (
	config     = "/etc/agent.toml"
	agent      = "/agent"
	outboxPath = "/data/outbox.db" // outbox.path in config
)

func main() {
	if err := boot(); err != nil {
		fmt.Printf("PC fail %v\n", err)
	}
	for { // PID 1 must not exit; reap whatever is left
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
			time.Sleep(time.Second)
		}
	}
}

func boot() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"devtmpfs", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	order, err := os.ReadFile("/modules.order")
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(string(order)) {
		ko, err := os.ReadFile("/lib/modules/" + name + ".ko")
		if err != nil {
			return err
		}
		if err := unix.InitModule(ko, ""); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load module %s: %w", name, err)
		}
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	opts, root := "", ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "pc.mountopts="); ok {
			opts = v
		}
		if v, ok := strings.CutPrefix(f, "vminit.root="); ok {
			root = v
		}
	}
	if root != "" {
		return switchRoot(root)
	}
	if err := waitFor("/dev/vda", 20*time.Second); err != nil {
		return err
	}
	_ = os.MkdirAll("/data", 0o700)
	if err := unix.Mount("/dev/vda", "/data", "ext4", 0, opts); err != nil {
		return fmt.Errorf("mount /dev/vda on /data (%s): %w", opts, err)
	}
	entries, err := os.ReadDir("/data")
	if err != nil {
		return err
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	fmt.Printf("PC files %s\n", strings.Join(names, " "))
	export()
	held()

	fmt.Println("PC run")
	cmd := exec.Command(agent, "run", "-config", config)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	err = cmd.Run()
	fmt.Printf("PC agent exit=%d %v\n", cmd.ProcessState.ExitCode(), err)
	return nil
}

// export lists the outbox with the agent's own command, in runs: the
// console is slow and the outbox holds thousands of records.
func export() {
	var out, errb bytes.Buffer
	cmd := exec.Command(agent, "outbox", "export", "-config", config)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	// A run per event type: sign-ins and sign-outs alternate.
	type run struct{ first, last uint64 }
	runs := map[string]*run{}
	var types []string
	flush := func(typ string) {
		if r := runs[typ]; r != nil {
			fmt.Printf("PC recs %s %d-%d\n", typ, r.first, r.last)
			runs[typ] = nil
		}
	}
	for sc.Scan() {
		var r struct {
			EventType     string `json:"event_type"`
			DriverLicense string `json:"driver_license"`
		}
		if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
			fmt.Printf("PC rec bad %q\n", sc.Text())
			continue
		}
		n, nerr := strconv.ParseUint(r.DriverLicense, 10, 64)
		cur, known := runs[r.EventType]
		if !known {
			types = append(types, r.EventType)
		}
		switch {
		case nerr != nil:
			fmt.Printf("PC rec %s %s\n", r.EventType, r.DriverLicense)
		case cur != nil && n == cur.last+1:
			cur.last = n
		default:
			flush(r.EventType)
			runs[r.EventType] = &run{n, n}
		}
	}
	for _, typ := range types {
		flush(typ)
	}
	msg := strings.Join(strings.Fields(errb.String()), " ")
	fmt.Printf("PC export exit=%d %s\n", cmd.ProcessState.ExitCode(), msg)
	_ = err
}

// held lists the events of the spill file beside the outbox, read as the
// agent reads it at start.
func held() {
	recs, damaged, err := daemon.ReadSpill(outboxPath + daemon.SpillSuffix)
	for _, r := range recs {
		fmt.Printf("PC held %s %s\n", r.Event.Type, r.Event.DriverLicense)
	}
	if damaged > 0 || err != nil {
		fmt.Printf("PC held damaged=%d err=%v\n", damaged, err)
	}
}

func waitFor(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// switchRoot mounts dev as the root file system and executes its
// /sbin/init in place of this process, as switch_root(8) does.
func switchRoot(dev string) error {
	if err := waitFor(dev, 20*time.Second); err != nil {
		return err
	}
	_ = os.MkdirAll("/newroot", 0o755)
	if err := unix.Mount(dev, "/newroot", "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	for _, m := range []string{"/dev", "/proc", "/sys"} {
		if err := unix.Mount(m, "/newroot"+m, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s: %w", m, err)
		}
	}
	if err := os.Chdir("/newroot"); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the new root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	return unix.Exec("/sbin/init", []string{"/sbin/init"}, os.Environ())
}
