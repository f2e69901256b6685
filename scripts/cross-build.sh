#!/usr/bin/env bash
# Cross-builds taxi-agent for the terminals and packages it for Debian.
#
# usage: scripts/cross-build.sh [-o DIR] [--no-verify] [--no-deb]
#
#   -o DIR       output directory (default: dist)
#   --no-verify  build once; skip the reproducibility check
#   --no-deb     binaries only, no .deb packages
#
# Writes to DIR:
#   taxi-agent_linux_armv7   linux/arm GOARM=7 (Debian armhf, most terminals)
#   taxi-agent_linux_armv6   linux/arm GOARM=6 (ARMv6 boards, e.g. Raspberry Pi 1/Zero)
#   taxi-agent_linux_arm64   linux/arm64
#   taxi-agent_linux_amd64   linux/amd64
#   taxi-agent_<version>-1_{armhf,arm64,amd64}.deb   (built with nfpm, see packaging/)
#   taxi-gateway_linux_{amd64,arm64}                 the fleet gateway (cmd/gateway)
#   taxi-gateway_<version>-1_{amd64,arm64}.deb       (packaging/nfpm-gateway.yaml)
#   SHA256SUMS               of all the above
# and prints a size table. It fails if the armv7 binary exceeds 12 MiB
# (ARMV7_MAX_BYTES overrides the limit).
#
# Binaries are static (CGO_ENABLED=0), built with -trimpath -buildvcs=false and
# stamped with -ldflags -X: version (git describe, or VERSION), commit, and the
# commit's time in UTC as build time, so the same commit and Go toolchain give
# the same bytes. The .debs take all their timestamps from SOURCE_DATE_EPOCH,
# the commit time. The build reads a snapshot of the working tree (tracked
# and untracked files, not ignored ones). Unless --no-verify is given,
# everything is built a second time from a copy of that snapshot at another
# path and compared byte for byte; any difference fails the build.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

out=dist
verify=1
deb=1
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=${2:?-o needs a directory}; shift 2 ;;
	--no-verify) verify=0; shift ;;
	--no-deb) deb=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "cross-build: unknown argument $1 (try -h)" >&2; exit 2 ;;
	esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
max_armv7=${ARMV7_MAX_BYTES:-$((12 * 1024 * 1024))}

# The stamp. GIT_OPTIONAL_LOCKS=0: never write the index (others may be
# committing in this checkout).
export GIT_OPTIONAL_LOCKS=0
commit=$(git rev-parse HEAD)
build_time=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) ||
		VERSION="v0.0.0-$(git rev-list --count HEAD)-g$(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)"
fi
# Debian version: v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3+git4.abc (after
# 1.2.3, before 1.2.4), v1.2.3-rc1 -> 1.2.3~rc1 (before 1.2.3).
deb_version=$(printf '%s\n' "$VERSION" | sed -E 's/^v//; s/-dirty$/.dirty/; s/-([0-9]+)-g([0-9a-f]+)/+git\1.\2/; s/-/~/g')
if ! printf '%s\n' "$deb_version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
	echo "cross-build: cannot make a Debian version from VERSION=$VERSION (got $deb_version)" >&2
	exit 2
fi
pkg=taxi-agent/internal/version
ldflags="-s -w -X $pkg.Version=$VERSION -X $pkg.Commit=$commit -X $pkg.BuildTime=$build_time"

# name GOARCH GOARM, armv7 first so an oversized binary fails fast.
targets=(
	"armv7 arm 7"
	"armv6 arm 6"
	"arm64 arm64 -"
	"amd64 amd64 -"
)
# Debian architecture, nfpm architecture, binary.
packages=(
	"armhf arm7 armv7"
	"arm64 arm64 arm64"
	"amd64 amd64 amd64"
)

# taxi-gateway runs on a server: name GOARCH, and its Debian packages.
gateway_targets=(
	"amd64 amd64"
	"arm64 arm64"
)

nfpm=
if [ "$deb" = 1 ]; then
	# The nfpm pinned in go.mod (tool directive), built once and cached.
	nfpm=$(go tool -n nfpm)
fi

# build_all SRC OUT: every binary and package from source tree SRC into OUT.
build_all() {
	local src=$1 dst=$2 t name goarch goarm bin size p debarch nfpmarch log
	for t in "${targets[@]}"; do
		read -r name goarch goarm <<<"$t"
		bin=$dst/taxi-agent_linux_$name
		local envs=(CGO_ENABLED=0 GOOS=linux "GOARCH=$goarch" GOFLAGS= GOAMD64=v1 GOARM64=v8.0)
		[ "$goarm" != - ] && envs+=("GOARM=$goarm")
		(cd "$src" && env "${envs[@]}" go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bin" ./cmd/agent)
		if [ "$name" = armv7 ]; then
			size=$(stat -c %s "$bin")
			if [ "$size" -gt "$max_armv7" ]; then
				echo "cross-build: $bin is $size bytes, over the limit of $max_armv7" >&2
				return 1
			fi
		fi
	done
	for t in "${gateway_targets[@]}"; do
		read -r name goarch <<<"$t"
		(cd "$src" && env CGO_ENABLED=0 GOOS=linux "GOARCH=$goarch" GOFLAGS= GOAMD64=v1 GOARM64=v8.0 \
			go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$dst/taxi-gateway_linux_$name" ./cmd/gateway)
	done
	if [ "$deb" = 1 ]; then
		for t in "${gateway_targets[@]}"; do
			read -r name goarch <<<"$t"
			if ! log=$(cd "$src" && NFPM_ARCH=$goarch NFPM_VERSION=$deb_version \
				NFPM_MAINTAINER="${NFPM_MAINTAINER:-taxi-agent maintainers <taxi-agent@localhost>}" \
				TAXI_GATEWAY_BIN="$dst/taxi-gateway_linux_$name" \
				"$nfpm" package -p deb -f packaging/nfpm-gateway.yaml \
				-t "$dst/taxi-gateway_${deb_version}-1_${goarch}.deb" 2>&1); then
				printf 'cross-build: nfpm (gateway %s):\n%s\n' "$goarch" "$log" >&2
				return 1
			fi
		done
		for p in "${packages[@]}"; do
			read -r debarch nfpmarch name <<<"$p"
			# nfpm reports errors on stdout among its chatter: show it
			# only on failure.
			if ! log=$(cd "$src" && NFPM_ARCH=$nfpmarch NFPM_VERSION=$deb_version \
				NFPM_MAINTAINER="${NFPM_MAINTAINER:-taxi-agent maintainers <taxi-agent@localhost>}" \
				TAXI_AGENT_BIN="$dst/taxi-agent_linux_$name" \
				"$nfpm" package -p deb -f packaging/nfpm.yaml \
				-t "$dst/taxi-agent_${deb_version}-1_${debarch}.deb" 2>&1); then
				printf 'cross-build: nfpm (%s):\n%s\n' "$debarch" "$log" >&2
				return 1
			fi
		done
	fi
	(cd "$dst" && sha256sum taxi-agent_* taxi-gateway_* >SHA256SUMS)
}

rm -f "$out"/taxi-agent_* "$out"/taxi-gateway_* "$out"/SHA256SUMS
echo "cross-build: $VERSION (commit $commit, built $build_time) into $out" >&2

# Build from a snapshot of the tree as it is now (tracked and untracked files,
# not ignored ones), so that every target sees the same sources even if
# someone edits the checkout meanwhile.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/a/taxi-agent" "$tmp/b/second/taxi-agent" "$tmp/b/out"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$tmp/a/taxi-agent"
build_all "$tmp/a/taxi-agent" "$out"

printf '%-56s %10s %8s\n' FILE BYTES MIB
for f in "$out"/taxi-agent_* "$out"/taxi-gateway_*; do
	size=$(stat -c %s "$f")
	printf '%-56s %10d %8s\n' "$(basename "$f")" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')"
done

if [ "$verify" = 1 ]; then
	# The same snapshot at a different path: -trimpath must keep the path
	# out of the binaries.
	cp -a "$tmp/a/taxi-agent/." "$tmp/b/second/taxi-agent/"
	build_all "$tmp/b/second/taxi-agent" "$tmp/b/out"
	differ=0
	for f in "$tmp"/b/out/*; do
		cmp -s "$f" "$out/$(basename "$f")" || differ=1
	done
	if [ "$differ" = 1 ]; then
		echo "cross-build: NOT reproducible: a second build from another path differs:" >&2
		diff "$out/SHA256SUMS" "$tmp/b/out/SHA256SUMS" >&2 || true
		exit 1
	fi
	echo "cross-build: reproducible: a second build from another path is byte-identical" >&2
fi
