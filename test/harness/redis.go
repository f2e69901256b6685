package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// StartRedis starts a throwaway redis-server listening only on a unix
// socket in a temporary directory, without persistence, and returns its
// URL (unix://…). It is stopped when the test ends. Without redis-server
// on PATH the test is skipped and says so (scripts/test.sh installs it
// when run as root).
func StartRedis(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not installed (apt-get install -y redis-server; scripts/test.sh does it as root)")
	}
	dir, err := os.MkdirTemp("", "redis-") // sun_path holds 108 bytes
	if err != nil {
		tb.Fatal(err)
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("start redis-server: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return fmt.Sprintf("unix://%s", sock)
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			tb.Fatalf("redis-server did not come up: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
