#!/usr/bin/env bash
# Measures the agent and prints a markdown table of its figures, each next
# to a floor measured in the same run (or labelled with the machine), and
# writes them to bench/latest.json with the commit, Go version, nproc and
# date. See "Guarantees and figures" in README.md for what each figure means.
#
# usage: scripts/bench.sh
#
# Environment:
#   BENCH_DIR           work directory on the disk to measure (default: a new
#                       directory under /var/tmp; /tmp is often tmpfs, where
#                       fsync is free and nothing counts as written)
#   BENCH_IDLE_SECONDS  idle window for the CPU figure (default 60)
#   BENCH_EVENTS        sign-outs timed for ack latency and flash wear (1000)
#   BENCH_DRAIN         queued events for the drain rate (10000)
#   BENCH_PENDING       backlog for RSS and start-up (100000)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

if [ -n "${BENCH_DIR:-}" ]; then
	work=$BENCH_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d /var/tmp/taxi-agent-bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT
fi
work=$(cd "$work" && pwd)

echo "building the agent for this machine and for linux/arm GOARM=7 (stripped)" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/agent" ./cmd/agent
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -ldflags='-s -w' -o "$work/agent-armv7" ./cmd/agent

mkdir -p bench
go run ./test/bench \
	-agent "$work/agent" -armv7 "$work/agent-armv7" -work "$work" -out bench/latest.json \
	-idle "${BENCH_IDLE_SECONDS:-60}s" -events "${BENCH_EVENTS:-1000}" \
	-drain "${BENCH_DRAIN:-10000}" -pending "${BENCH_PENDING:-100000}"
