#!/usr/bin/env bash
# Installs qemu and fetches Debian's kernel for the VM suites
# (scripts/powercut.sh, scripts/systemd-vm.sh), once: the kernel package
# is extracted under the cache directory and reused.
#
# usage: scripts/vm-kernel.sh        prints the directory of the extracted
#                                    linux-image package (boot/, lib/modules/)
#
# Cache: $TAXI_AGENT_VM_CACHE, else /var/cache/taxi-agent-vm as root, else
# ${XDG_CACHE_HOME:-~/.cache}/taxi-agent-vm. Never inside the repository.
set -euo pipefail
export LC_ALL=C

if [ -n "${TAXI_AGENT_VM_CACHE:-}" ]; then cache=$TAXI_AGENT_VM_CACHE
elif [ "$(id -u)" = 0 ]; then cache=/var/cache/taxi-agent-vm
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/taxi-agent-vm
fi
mkdir -p "$cache"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "vm-kernel: missing ${need[*]}; install them (as root: apt-get install ${need[*]})" >&2
		exit 1
	fi
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

kdir=$cache/kernel
if ! compgen -G "$kdir/boot/vmlinuz-*" >/dev/null; then
	# linux-image-amd64 is the metapackage; its dependency is the kernel.
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		[ "$(id -u)" = 0 ] && apt-get update -qq >&2
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || { echo "vm-kernel: cannot tell which kernel linux-image-amd64 depends on" >&2; exit 1; }
	tmp=$(mktemp -d "$cache/dl.XXXXXX")
	(cd "$tmp" && apt-get download "$pkg" >&2 2>/dev/null) || { rm -rf "$tmp"; echo "vm-kernel: apt-get download $pkg failed" >&2; exit 1; }
	rm -rf "$kdir.new"
	dpkg-deb -x "$tmp"/*.deb "$kdir.new"
	rm -rf "$tmp" "$kdir"
	mv "$kdir.new" "$kdir"
fi
echo "$kdir"
