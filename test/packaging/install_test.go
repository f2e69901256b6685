package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// overlaySetup mounts, in a private mount namespace, a throwaway writable
// overlay of the root file system at $1/root (upper layer on a tmpfs), so
// dpkg can install into it without touching this machine.
const overlaySetup = `
set -e
mount -t tmpfs tmpfs "$1"
mkdir "$1/upper" "$1/work" "$1/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root"
mount --bind /proc "$1/root/proc"
mount --bind /dev "$1/root/dev"
`

// installChecks runs inside the overlay: install, inspect, edit the config,
// reinstall, purge. dpkg's chatter goes to stderr; stdout is key=value.
const installChecks = `
set -e
dpkg -i /tmp/taxi-agent.deb >&2
echo "passwd=$(getent passwd taxi-agent)"
echo "groups=$(id -nG taxi-agent)"
echo "confdir=$(stat -c '%U:%G %a' /etc/taxi-agent)"
echo "conffiles=$(dpkg-query -W -f='${Conffiles}' taxi-agent | sed 's/^ *//')"
echo "version=$(taxi-agent version)"
echo "verify=$(systemd-analyze verify --man=no taxi-agent.service 2>&1 | tr '\n' ' ')"
echo '# local edit' >>/etc/taxi-agent/agent.toml
chmod 0700 /etc/taxi-agent
dpkg -i /tmp/taxi-agent.deb >&2
echo "passwd_again=$(getent passwd taxi-agent)"
echo "edit_kept=$(grep -c '^# local edit$' /etc/taxi-agent/agent.toml)"
echo "confdir_again=$(stat -c '%U:%G %a' /etc/taxi-agent)"
mkdir -p /var/lib/taxi-agent && echo pending >/var/lib/taxi-agent/outbox.db
dpkg --purge taxi-agent >&2
echo "purged_config=$(test -e /etc/taxi-agent/agent.toml && echo present || echo absent)"
echo "purged_binary=$(test -e /usr/bin/taxi-agent && echo present || echo absent)"
echo "outbox_kept=$(cat /var/lib/taxi-agent/outbox.db)"
`

// TestDebInstall installs the package for this machine's architecture into
// a throwaway overlay of the root file system and checks what the
// maintainer scripts did: a system user in group dialout, /etc/taxi-agent
// given to its group, the conffile registered and an operator's edit kept
// on reinstall, and the outbox kept on purge.
func TestDebInstall(t *testing.T) {
	requireTool(t, "dpkg", "dpkg")
	requireTool(t, "systemd-analyze", "systemd")
	requireTool(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("installing the package into an overlay needs root (mount namespace and overlayfs)")
	}
	arch := runtime.GOARCH
	if arch == "arm" {
		arch = "armhf"
	}
	dist := crossBuild(t)
	var deb string
	for _, d := range debs {
		if d.arch == arch {
			deb = debPath(t, dist, d.arch)
		}
	}
	if deb == "" {
		t.Skipf("no package for this machine's architecture %s", runtime.GOARCH)
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", overlaySetup, "sh", t.TempDir()).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an overlay of / in a private mount namespace here (needs CAP_SYS_ADMIN and overlayfs): %v\n%s", err, out)
	}

	hostBefore := hostAccounts(t)
	dir := t.TempDir()
	script := overlaySetup + `
cp "$2" "$1/root/tmp/taxi-agent.deb"
chroot "$1/root" sh -c "$3"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir, deb, installChecks)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("install into overlay: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !bytes.Equal(hostAccounts(t), hostBefore) {
		t.Fatal("the install changed this machine's /etc/passwd or /etc/group")
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = strings.TrimSpace(v)
	}
	t.Logf("installed: %q", got)

	fields := strings.Split(got["passwd"], ":")
	if len(fields) != 7 || fields[0] != "taxi-agent" || fields[5] != "/var/lib/taxi-agent" || fields[6] != "/usr/sbin/nologin" {
		t.Errorf("passwd entry %q, want taxi-agent with home /var/lib/taxi-agent and shell /usr/sbin/nologin", got["passwd"])
	} else if uid := fields[2]; len(uid) > 3 || uid == "0" {
		t.Errorf("uid %s is not a system uid", uid)
	}
	if groups := strings.Fields(got["groups"]); len(groups) < 2 || groups[0] != "taxi-agent" || !contains(groups, "dialout") {
		t.Errorf("groups %q, want primary taxi-agent and dialout", got["groups"])
	}
	if got["confdir"] != "root:taxi-agent 750" {
		t.Errorf("/etc/taxi-agent is %q, want root:taxi-agent 750", got["confdir"])
	}
	if !strings.HasPrefix(got["conffiles"], "/etc/taxi-agent/agent.toml ") {
		t.Errorf("registered conffiles %q, want /etc/taxi-agent/agent.toml", got["conffiles"])
	}
	if !strings.HasPrefix(got["version"], "taxi-agent ") || !strings.Contains(got["version"], git(t, "rev-parse", "HEAD")) {
		t.Errorf("installed taxi-agent version says %q", got["version"])
	}
	if got["verify"] != "" {
		t.Errorf("systemd-analyze verify of the installed unit: %s", got["verify"])
	}
	if got["passwd_again"] != got["passwd"] {
		t.Errorf("reinstall changed the user: %q -> %q", got["passwd"], got["passwd_again"])
	}
	if got["edit_kept"] != "1" {
		t.Errorf("reinstall lost the operator's edit of agent.toml (count %q)", got["edit_kept"])
	}
	if got["confdir_again"] != "root:taxi-agent 700" {
		t.Errorf("reinstall changed the operator's mode of /etc/taxi-agent: %q", got["confdir_again"])
	}
	if got["purged_config"] != "absent" || got["purged_binary"] != "absent" {
		t.Errorf("after purge: config %s, binary %s; want both absent", got["purged_config"], got["purged_binary"])
	}
	if got["outbox_kept"] != "pending" {
		t.Errorf("purge removed the outbox (got %q)", got["outbox_kept"])
	}
}

// hostAccounts is this machine's /etc/passwd and /etc/group.
func hostAccounts(tb testing.TB) []byte {
	tb.Helper()
	var b []byte
	for _, name := range []string{"passwd", "group"} {
		data, err := os.ReadFile(filepath.Join("/etc", name))
		if err != nil {
			tb.Fatal(err)
		}
		b = append(b, data...)
	}
	return b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
