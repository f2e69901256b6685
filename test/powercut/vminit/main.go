// Command vminit is PID 1 of the power-cut suite's VM. It loads the
// kernel modules listed in /modules.order, mounts the virtual disk
// /dev/vda (ext4) on /data with the options of pc.mountopts= on the kernel
// command line, reports what the previous boot left there, then runs the
// agent. Everything goes to the console (ttyS0), one line per fact, each
// starting with "PC ":
//
//	PC files <name>…             the entries of /data
//	PC rec <type> <licence>      one line per record of `agent outbox export`
//	PC export exit=<code> <msg>  how the export ended
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
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	config = "/etc/agent.toml"
	agent  = "/agent"
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
	opts := ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "pc.mountopts="); ok {
			opts = v
		}
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

	fmt.Println("PC run")
	cmd := exec.Command(agent, "run", "-config", config)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	err = cmd.Run()
	fmt.Printf("PC agent exit=%d %v\n", cmd.ProcessState.ExitCode(), err)
	return nil
}

// export lists the outbox with the agent's own command, one short line a
// record: the console is slow.
func export() {
	var out, errb bytes.Buffer
	cmd := exec.Command(agent, "outbox", "export", "-config", config)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			EventType     string `json:"event_type"`
			DriverLicense string `json:"driver_license"`
		}
		if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
			fmt.Printf("PC rec bad %q\n", sc.Text())
			continue
		}
		fmt.Printf("PC rec %s %s\n", r.EventType, r.DriverLicense)
	}
	msg := strings.Join(strings.Fields(errb.String()), " ")
	fmt.Printf("PC export exit=%d %s\n", cmd.ProcessState.ExitCode(), msg)
	_ = err
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
