// Package systemdvm runs the Debian package under a real systemd: a minimal
// Debian booted in qemu with systemd as PID 1, the .deb installed, the
// meter on the VM's second serial port (simulated on the host) and a fake
// WeChat Pay endpoint on the host. scripts/systemd-vm.sh builds the image
// and the package and runs it; plain `go test ./...` skips it.
package systemdvm

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
	"taxi-agent/test/powercut"
)

var (
	kernel = flag.String("systemdvm.kernel", "/var/cache/taxi-agent-vm/kernel", "root of an extracted Debian linux-image package")
	image  = flag.String("systemdvm.image", "", "root file system image with systemd (scripts/systemd-vm.sh builds it); empty skips the test")
	deb    = flag.String("systemdvm.deb", "", "the amd64 .deb to install")
	accel  = flag.String("systemdvm.accel", "tcg", "qemu accelerator")
	agent  = flag.String("systemdvm.agent", "", "a static agent binary to put in place of the package's /usr/bin/taxi-agent (to try a build from another branch)")
)

const (
	bootTimeout = 5 * time.Minute // systemd under software emulation, on a shared machine
	cmdTimeout  = 2 * time.Minute
	hostAddr    = "10.0.2.2" // the host's loopback, as a guest on user networking sees it
)

// vm is the booted VM with its console shell and meter line.
type vm struct {
	cmd   *exec.Cmd
	sh    *shell
	meter *metersim.Meter
}

// must runs a command in the VM and fails t unless it exits 0; the
// service's journal then goes into the failure.
func (v *vm) must(t *testing.T, cmd string) string {
	t.Helper()
	out, rc, err := v.sh.run(cmd, cmdTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if rc != 0 {
		j, _, _ := v.sh.run("journalctl -u taxi-agent --no-pager | tail -25", cmdTimeout)
		t.Fatalf("in the VM, %q exited %d:\n%s\njournal:\n%s", cmd, rc, out, j)
	}
	return out
}

func (v *vm) run(t *testing.T, cmd string) (string, int) {
	t.Helper()
	out, rc, err := v.sh.run(cmd, cmdTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return out, rc
}

// unit returns systemctl show's properties of the service.
func (v *vm) unit(t *testing.T, props ...string) map[string]string {
	t.Helper()
	out := v.must(t, "systemctl show taxi-agent.service -p "+strings.Join(props, ",")+" || true")
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(l, "="); ok {
			m[k] = val
		}
	}
	return m
}

func TestSystemdVM(t *testing.T) {
	if *image == "" {
		t.Skip("on demand: scripts/systemd-vm.sh")
	}
	dir, err := os.MkdirTemp("", "svm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	// The endpoint, on the host's loopback.
	keys, err := punchsim.GenerateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := punchsim.New(keys, punchsim.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Stop() })
	u, err := url.Parse(ep.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort(hostAddr, u.Port())

	// The payload disk: the package, the keys, a good and a bad config.
	payload := filepath.Join(dir, "payload")
	must(t, os.MkdirAll(filepath.Join(payload, "keys"), 0o755))
	copyFile(t, *deb, filepath.Join(payload, "taxi-agent.deb"))
	if *agent != "" {
		copyFile(t, *agent, filepath.Join(payload, "taxi-agent"))
	}
	for _, f := range []string{keys.PrivateKeyFile, keys.PublicKeyFile, keys.CAFile} {
		copyFile(t, f, filepath.Join(payload, "keys", filepath.Base(f)))
	}
	cfg := config.Default()
	cfg.Vehicle = config.Vehicle{PlateNumber: harness.Plate, RegionID: harness.RegionID}
	cfg.WeChatPay = keys.WeChatPay(u.String())
	for _, f := range []*string{&cfg.WeChatPay.PrivateKeyFile, &cfg.WeChatPay.PublicKeyFile, &cfg.WeChatPay.CAFile} {
		*f = "/etc/taxi-agent/" + filepath.Base(*f)
	}
	good, err := harness.EncodeConfig(cfg)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(payload, "agent.toml"), good, 0o644))
	// An unknown key: a config error, exit status 2.
	must(t, os.WriteFile(filepath.Join(payload, "bad.toml"), append([]byte("no_such_key = 1\n"), good...), 0o644))
	payloadImg := mkfs(t, dir, "payload.img", 64, payload)
	stateImg := mkfs(t, dir, "state.img", 64, "")

	initrd := filepath.Join(dir, "initrd")
	writeInitrd(t, dir, initrd)

	consoleL, err := net.Listen("unix", filepath.Join(dir, "console.sock"))
	must(t, err)
	meterL, err := net.Listen("unix", filepath.Join(dir, "meter.sock"))
	must(t, err)
	k, _ := filepath.Glob(filepath.Join(*kernel, "boot", "vmlinuz-*"))
	if len(k) != 1 {
		t.Fatalf("no kernel under %s", *kernel)
	}
	cmd := exec.Command("qemu-system-x86_64",
		"-accel", *accel, "-m", "512", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", k[0], "-initrd", initrd,
		"-append", "console=ttyS0 vminit.root=/dev/vda quiet loglevel=3 systemd.show_status=0 panic=-1",
		"-serial", "unix:"+filepath.Join(dir, "console.sock"),
		"-serial", "unix:"+filepath.Join(dir, "meter.sock"),
		// -snapshot: the cached image stays as built.
		"-snapshot",
		"-drive", "file="+*image+",format=raw,if=virtio",
		"-drive", "file="+stateImg+",format=raw,if=virtio,snapshot=off",
		"-drive", "file="+payloadImg+",format=raw,if=virtio",
		"-nic", "user,model=virtio-net-pci",
	)
	var qemuOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	accept := func(l net.Listener) net.Conn {
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("qemu did not connect: %v\n%s", err, qemuOut.String())
		}
		return c
	}
	console, meterConn := accept(consoleL), accept(meterL)
	v := &vm{cmd: cmd, sh: newShell(console)}
	v.meter = metersim.New(meterConn, metersim.Options{AnswerTimeout: time.Second})
	t.Cleanup(func() { v.meter.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", tail(v.sh.Output(), 6000))
		}
	})

	start := time.Now()
	must(t, v.sh.login(bootTimeout))
	state, _ := v.run(t, "systemctl is-system-running --wait")
	t.Logf("booted in %s: system %s", time.Since(start).Round(time.Second), strings.TrimSpace(state))

	// Install, as a technician would.
	v.must(t, "mkdir -p /mnt/p && mount -o ro /dev/vdc /mnt/p && dpkg -i /mnt/p/taxi-agent.deb")
	if *agent != "" {
		v.must(t, "install -m 0755 /mnt/p/taxi-agent /usr/bin/taxi-agent")
	}
	v.must(t, "mkdir -p /var/lib/taxi-agent && mount /dev/vdb /var/lib/taxi-agent")
	// As the README's "Keys and config" says.
	v.must(t, "install -o taxi-agent -g taxi-agent -m 0600 /mnt/p/keys/apiclient_key.pem /etc/taxi-agent/")
	v.must(t, "install -o root -g root -m 0644 /mnt/p/keys/wechatpay_pub.pem /mnt/p/keys/ca.pem /mnt/p/agent.toml /etc/taxi-agent/")
	v.must(t, "runuser -u taxi-agent -- taxi-agent check-config -config /etc/taxi-agent/agent.toml")

	t.Run("starts and reaches READY", func(t *testing.T) {
		// Type=notify: start returns once the agent sent READY=1.
		v.must(t, "systemctl enable --now taxi-agent.service")
		p := v.unit(t, "ActiveState", "SubState", "NRestarts", "StatusText")
		if p["ActiveState"] != "active" || p["SubState"] != "running" {
			t.Fatalf("after start: %v\n%s", p, v.must(t, "journalctl -u taxi-agent --no-pager | tail -30"))
		}
		t.Logf("unit: %v", p)
	})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	shift := harness.ShiftOf(1, time.Now())
	t.Run("meter answered and punches delivered", func(t *testing.T) {
		for _, ex := range []func() (metersim.Result, error){
			func() (metersim.Result, error) { return v.meter.SignIn(ctx, shift) },
			func() (metersim.Result, error) { return v.meter.SignOut(ctx, shift) },
		} {
			res, err := ex()
			if err != nil || !res.OK() {
				t.Fatalf("meter exchange: %+v, %v\n%s", res, err, v.must(t, "journalctl -u taxi-agent --no-pager | tail -30"))
			}
		}
		waitPunches(t, ep, 2, 2*time.Minute)
	})

	t.Run("status without sudo for group taxi-agent", func(t *testing.T) {
		v.must(t, "id tech >/dev/null 2>&1 || useradd -m -G taxi-agent tech")
		out := v.must(t, "su -s /bin/sh tech -c 'taxi-agent status'")
		t.Logf("taxi-agent status as tech:\n%s", out)
		// The clock's synchronisation, as the agent reads it under the
		// unit's ProtectClock=yes (adjtimex refused; timesyncd's flag).
		if m := regexp.MustCompile(`(?m)synchronised[^\n]*\((\w+)\)$`).FindStringSubmatch(out); m == nil || m[1] == "unknown" {
			t.Errorf("the agent cannot read the clock's synchronisation under the unit: %v", m)
		} else {
			t.Logf("clock synchronisation read through %s", m[1])
		}
		if out2, rc := v.run(t, "su -s /bin/sh nobody -c 'taxi-agent status'"); rc == 0 {
			t.Errorf("a user outside group taxi-agent read the status:\n%s", out2)
		}
	})

	t.Run("systemd-analyze security", func(t *testing.T) {
		out := v.must(t, "systemd-analyze security taxi-agent.service | tail -1")
		m := regexp.MustCompile(`exposure level for taxi-agent.service: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in %q", out)
		}
		level, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("exposure %.1f", level)
		if level > 2.5 {
			t.Errorf("exposure %.1f > 2.5", level)
		}
	})

	// restarted waits until systemd has restarted the agent since
	// NRestarts was before and it runs again.
	restarted := func(t *testing.T, before string, timeout time.Duration) map[string]string {
		t.Helper()
		var p map[string]string
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			p = v.unit(t, "ActiveState", "SubState", "NRestarts", "ExecMainCode", "ExecMainStatus")
			if p["ActiveState"] == "active" && p["SubState"] == "running" && p["NRestarts"] != before {
				return p
			}
			time.Sleep(3 * time.Second)
		}
		t.Fatalf("not restarted within %s: %v\n%s", timeout, p,
			v.must(t, "journalctl -u taxi-agent --no-pager | grep -v 'already stored' | grep -v '^.*goroutine\\|^.*\\.go:' | tail -25"))
		return nil
	}

	t.Run("restarted after a crash", func(t *testing.T) {
		// What the watchdog sends, and what a Go panic ends in: the
		// runtime would exit 2, the status that means a config error.
		before := v.unit(t, "NRestarts")["NRestarts"]
		v.must(t, "systemctl kill -s ABRT --kill-whom=main taxi-agent.service")
		p := restarted(t, before, 90*time.Second)
		t.Logf("after SIGABRT: %v", p)
	})

	t.Run("restarted when a commit is stuck", func(t *testing.T) {
		before := v.unit(t, "NRestarts")["NRestarts"]
		v.must(t, "sync && fsfreeze -f /var/lib/taxi-agent")
		frozen := time.Now()
		// A sign-in (not answered), then a sign-out, answered 0x90 only
		// once durable: its commit blocks in the kernel.
		stuck := harness.ShiftOf(2, time.Now())
		answered := make(chan metersim.Result, 1)
		go func() {
			if _, err := v.meter.SignIn(ctx, stuck); err != nil {
				answered <- metersim.Result{}
				return
			}
			res, _ := v.meter.SignOut(ctx, stuck)
			answered <- res
		}()
		// Past the commit deadline (outbox.commit_timeout, 10 s) and before
		// the watchdog (WatchdogSec=30s), status says so from memory.
		time.Sleep(18 * time.Second)
		status, rc := v.run(t, "timeout 10 su -s /bin/sh tech -c 'taxi-agent status'")
		t.Logf("status %s after the freeze (exit %d):\n%s", time.Since(frozen).Round(time.Second), rc, status)
		if !strings.Contains(strings.ToLower(status), "stuck") {
			t.Errorf("with the commit stuck, status did not say so within 10 s (exit %d)", rc)
		}
		var p map[string]string
		deadline := time.Now().Add(150 * time.Second)
		for time.Now().Before(deadline) {
			p = v.unit(t, "ActiveState", "SubState", "Result", "NRestarts")
			if p["Result"] == "watchdog" || p["NRestarts"] != before || p["ActiveState"] != "active" {
				break
			}
			time.Sleep(5 * time.Second)
		}
		acted := time.Since(frozen)
		// A thread blocked on a frozen file system dies only once it thaws.
		v.must(t, "fsfreeze -u /var/lib/taxi-agent")
		t.Logf("%s after the freeze: %v", acted.Round(time.Second), p)
		if p["Result"] != "watchdog" && p["NRestarts"] == before {
			t.Fatalf("systemd did not act on a commit stuck for %s: %v\n%s", acted.Round(time.Second), p,
				v.must(t, "journalctl -u taxi-agent --no-pager | grep -v 'already stored' | tail -20"))
		}
		p = restarted(t, before, 2*time.Minute)
		select {
		case res := <-answered:
			if !res.OK() {
				t.Errorf("the stuck event was not answered 0x90 in the end: %+v", res)
			}
		case <-time.After(time.Minute):
			t.Errorf("the stuck event was never answered after the restart")
		}
		waitPunches(t, ep, 4, 2*time.Minute)
		t.Logf("restarted: %v\n%s", p, v.must(t, "journalctl -u taxi-agent --no-pager | grep -iE 'watchdog|stuck|Main process|Scheduled restart' | tail -8"))
	})

	t.Run("no restart after a config error", func(t *testing.T) {
		v.must(t, "install -m 0644 /mnt/p/bad.toml /etc/taxi-agent/agent.toml")
		v.run(t, "systemctl restart taxi-agent.service")
		p := v.unit(t, "NRestarts")
		time.Sleep(20 * time.Second) // RestartSec=5s: a restart would have come
		q := v.unit(t, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
		if q["ActiveState"] != "failed" || q["ExecMainStatus"] != "2" || q["NRestarts"] != p["NRestarts"] {
			t.Errorf("after a config error: %v (NRestarts was %s)", q, p["NRestarts"])
		}
		t.Logf("after a config error: %v\n%s", q, v.must(t, "journalctl -u taxi-agent --no-pager | tail -5"))
		v.must(t, "install -m 0644 /mnt/p/agent.toml /etc/taxi-agent/agent.toml")
	})
}

func waitPunches(t *testing.T, ep *punchsim.Server, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(ep.Accepted()) < n {
		if time.Now().After(deadline) {
			var got []string
			for _, p := range ep.Accepted() {
				got = append(got, harness.PunchKey(p))
			}
			t.Fatalf("%d punches accepted within %s, want %d: %v", len(got), timeout, n, got)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, 0o644))
}

// mkfs makes an ext4 image of sizeMiB, filled from dir if given.
func mkfs(t *testing.T, tmp, name string, sizeMiB int, dir string) string {
	t.Helper()
	img := filepath.Join(tmp, name)
	args := []string{"-q", "-F"}
	if dir != "" {
		args = append(args, "-d", dir)
	}
	args = append(args, img, fmt.Sprintf("%dM", sizeMiB))
	if out, err := exec.Command("mkfs.ext4", args...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", name, err, out)
	}
	return img
}

// writeInitrd builds the initramfs that loads the disk, network and ext4
// modules and hands over to the image's systemd.
func writeInitrd(t *testing.T, tmp, path string) {
	t.Helper()
	initBin := filepath.Join(tmp, "vminit")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "taxi-agent/test/powercut/vminit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vminit: %v\n%s", err, out)
	}
	m, _ := filepath.Glob(filepath.Join(*kernel, "lib", "modules", "*"))
	if len(m) != 1 {
		t.Fatalf("no modules under %s", *kernel)
	}
	mods, err := powercut.ModuleOrder(m[0], "virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4")
	must(t, err)
	var b bytes.Buffer
	a := powercut.NewInitramfs(&b)
	for _, d := range []string{"dev", "proc", "sys", "lib", "lib/modules", "newroot"} {
		a.Dir(d)
	}
	a.CharDev("dev/console", 5, 1)
	ib, err := os.ReadFile(initBin)
	must(t, err)
	a.File("init", 0o755, ib)
	var order []string
	for _, p := range mods {
		data, err := os.ReadFile(p)
		must(t, err)
		a.File("lib/modules/"+powercut.ModuleName(p)+".ko", 0o644, data)
		order = append(order, powercut.ModuleName(p))
	}
	a.File("modules.order", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	must(t, a.Close())
	must(t, os.WriteFile(path, b.Bytes(), 0o600))
}
