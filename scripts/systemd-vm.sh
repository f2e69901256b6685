#!/usr/bin/env bash
# The package under a real systemd (test/systemdvm): boots a minimal Debian
# with systemd as PID 1 in qemu, installs the amd64 .deb from
# scripts/cross-build.sh, puts keys and a config in place and checks the
# service end to end: READY, the meter (the VM's second serial port,
# simulated on the host) answered, punches delivered to a fake WeChat Pay
# endpoint on the host, `taxi-agent status` for a member of group
# taxi-agent, a restart by the watchdog when a commit is stuck (fsfreeze of
# the state file system, a disk of its own), no restart after a config
# error, and the unit's exposure under `systemd-analyze security`.
#
# usage: scripts/systemd-vm.sh [-image-only] [go test flags...]
#
# On demand only: the first run debootstraps the image (a few minutes) and
# caches it; later runs boot it copy-on-write and leave it unchanged.
# Cache: as for scripts/vm-kernel.sh (/var/cache/taxi-agent-vm as root).
# Needs root (debootstrap, mkfs.ext4 -d with ownership).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
image_only=0
if [ "${1:-}" = -image-only ]; then image_only=1; shift; fi
[ "$(id -u)" = 0 ] || { echo "systemd-vm: run as root (debootstrap)" >&2; exit 1; }

kernel=$(./scripts/vm-kernel.sh)
cache=$(dirname "$kernel")
command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }

# The image: bump recipe when what follows changes.
recipe=bookworm-systemd-v2
image=$cache/rootfs-$recipe.img
if [ ! -s "$image" ]; then
	echo "systemd-vm: building $image (once)" >&2
	root=$(mktemp -d "$cache/rootfs.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
	debootstrap --variant=minbase \
		--include=systemd,systemd-sysv,systemd-timesyncd,udev,dbus,adduser,util-linux,e2fsprogs,iproute2,passwd,login \
		bookworm "$root" "$mirror" >&2
	# systemd-timesyncd: what a Debian terminal keeps its clock with; the
	# agent reads its state where ProtectClock= refuses adjtimex.
	# Root logs in on the console without a password; the host drives the
	# VM through it.
	mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
	cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,38400,9600 %I dumb
UNIT
	# The meter's port is not a login terminal.
	ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS1.service"
	echo taxi-vm >"$root/etc/hostname"
	: >"$root/etc/fstab"
	mkdir -p "$root/etc/systemd/network"
	cat >"$root/etc/systemd/network/10-user.network" <<'NET'
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
NET
	chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
	chroot "$root" passwd -d root >/dev/null
	rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
	size=$(( $(du -sm "$root" | cut -f1) + 400 ))
	mkfs.ext4 -q -F -d "$root" -L root "$image.new" "${size}M"
	mv "$image.new" "$image"
	rm -rf "$root"
	trap - EXIT
fi

[ $image_only = 1 ] && { echo "$image"; exit 0; }

dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
./scripts/cross-build.sh --no-verify -o "$dist" >&2
deb=$(ls "$dist"/taxi-agent_*_amd64.deb)
exec go test -count=1 -v -timeout 30m -run '^TestSystemdVM$' ./test/systemdvm \
	-systemdvm.kernel="$kernel" -systemdvm.image="$image" -systemdvm.deb="$deb" "$@"
