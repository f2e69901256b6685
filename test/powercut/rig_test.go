package powercut

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// diskMiB is the size of the outbox's virtual disk.
const diskMiB = 128

// rig is what every boot shares: the initramfs, the disk, the sockets.
type rig struct {
	dir    string // short: it holds unix sockets
	vmcfg  VMConfig
	disk   *Disk
	nbd    *NBDServer
	meterL net.Listener
}

// newRig builds the agent (with the mutant's tag), the VM's init and
// initramfs, formats the disk and starts serving it.
func newRig(t *testing.T, mut string, mountOpts string) *rig {
	t.Helper()
	dir, err := os.MkdirTemp("", "pc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	vmlinuz, modDir := kernelFiles(t, *kernel)
	agent, err := buildStatic(dir, "taxi-agent/cmd/agent", mutantTags[mut])
	if err != nil {
		t.Fatal(err)
	}
	initBin, err := buildStatic(dir, "taxi-agent/test/powercut/vminit", "")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := punchsim.GenerateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd")
	if err := writeInitramfs(initrd, initBin, agent, modDir, keys); err != nil {
		t.Fatal(err)
	}

	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, diskMiB<<20); err != nil {
		t.Fatal(err)
	}
	// No lazy initialisation: the kernel would write the tables in the
	// background, and the cuts would be about that.
	mkfs := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0", img)
	if out, err := mkfs.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	image, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(img)
	disk, err := NewDisk(image)
	if err != nil {
		t.Fatal(err)
	}
	nbdSock := filepath.Join(dir, "nbd.sock")
	nbdL, err := net.Listen("unix", nbdSock)
	if err != nil {
		t.Fatal(err)
	}
	srv := ServeNBD(nbdL, disk)
	t.Cleanup(func() { srv.Close() })
	meterSock := filepath.Join(dir, "meter.sock")
	meterL, err := net.Listen("unix", meterSock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meterL.Close() })

	acc := *accel
	if acc == "" {
		// Software emulation unless asked: on the project's machines
		// /dev/kvm opens, yet a guest under it never prints a line.
		acc = "tcg"
	}
	appendArgs := ""
	if mountOpts != "" {
		appendArgs = "pc.mountopts=" + mountOpts
	}
	return &rig{
		dir: dir, disk: disk, nbd: srv, meterL: meterL,
		vmcfg: VMConfig{Kernel: vmlinuz, Initrd: initrd, Append: appendArgs,
			NBDSocket: nbdSock, MeterSocket: meterSock, Accel: acc},
	}
}

// kernelFiles finds vmlinuz and the module directory in an extracted
// linux-image package.
func kernelFiles(t *testing.T, root string) (vmlinuz, modDir string) {
	t.Helper()
	k, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	m, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(k) != 1 || len(m) != 1 {
		t.Fatalf("no single kernel under %s (boot/vmlinuz-*: %v, lib/modules/*: %v): run scripts/powercut.sh, which fetches it", root, k, m)
	}
	return k[0], m[0]
}

// agentConfig is the agent's config inside the VM. There is no network:
// the uploader fails and records stay in the outbox, where the check
// after each cut finds them.
func agentConfig(keys punchsim.Keys) ([]byte, error) {
	c := config.Default()
	c.Vehicle = config.Vehicle{PlateNumber: harness.Plate, RegionID: harness.RegionID}
	c.Meter.Device = "/dev/ttyS1"
	c.Outbox.Path = "/data/outbox.db"
	c.WeChatPay = keys.WeChatPay("https://punch.invalid")
	for _, f := range []*string{&c.WeChatPay.PrivateKeyFile, &c.WeChatPay.PublicKeyFile, &c.WeChatPay.CAFile, &c.WeChatPay.PlatformCertFile} {
		if *f != "" {
			*f = "/keys/" + filepath.Base(*f)
		}
	}
	c.Admin.Socket = "/run/agent.sock"
	c.Log.Level = "warn" // the console is slow
	return harness.EncodeConfig(c)
}

func writeInitramfs(path, initBin, agentBin, modDir string, keys punchsim.Keys) error {
	var b bytes.Buffer
	a := NewInitramfs(&b)
	for _, d := range []string{"dev", "proc", "sys", "data", "etc", "keys", "lib", "lib/modules", "run", "tmp"} {
		a.Dir(d)
	}
	a.CharDev("dev/console", 5, 1)
	for name, p := range map[string]string{"init": initBin, "agent": agentBin} {
		data, err := readAll(p)
		if err != nil {
			return err
		}
		a.File(name, 0o755, data)
	}
	cfg, err := agentConfig(keys)
	if err != nil {
		return err
	}
	a.File("etc/agent.toml", 0o600, cfg)
	for _, f := range []string{keys.PrivateKeyFile, keys.PublicKeyFile, keys.CAFile, keys.PlatformCertFile} {
		if f == "" {
			continue
		}
		data, err := readAll(f)
		if err != nil {
			return err
		}
		a.File("keys/"+filepath.Base(f), 0o600, data)
	}
	mods, err := ModuleOrder(modDir, "virtio_pci", "virtio_blk", "crc32c_generic", "ext4")
	if err != nil {
		return err
	}
	var order []string
	for _, m := range mods {
		data, err := readAll(m)
		if err != nil {
			return err
		}
		a.File("lib/modules/"+ModuleName(m)+".ko", 0o644, data)
		order = append(order, ModuleName(m))
	}
	a.File("modules.order", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	if err := a.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// acceptMeter waits for qemu to connect the VM's ttyS1.
func (r *rig) acceptMeter(timeout time.Duration) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := r.meterL.Accept()
		ch <- res{c, err}
	}()
	select {
	case x := <-ch:
		return x.c, x.err
	case <-time.After(timeout):
		r.meterL.Close()
		return nil, os.ErrDeadlineExceeded
	}
}
