#!/usr/bin/env bash
# The power-cut suite (test/powercut): the static agent runs in a small VM
# (Debian's kernel under qemu) on a virtual disk whose volatile write cache
# the test controls; the power is cut at random moments, the unflushed
# writes are lost (all of them, or a random half of their blocks), and
# after each boot the agent's own `outbox export` must list every event
# the meter was promised.
#
# usage: scripts/powercut.sh [N] [-mutants-only] [go test flags...]
#
#   N              power cuts of the main run (default 20; the README's
#                  figures come from 200)
#   -mutants-only  only prove the suite can fail
#
# First, each mutant (bbolt NoSync; 0x90 before the commit; ext4 mounted
# nobarrier) must be caught within 20 cuts; then N cuts of the real agent
# must lose nothing. Lines starting FIGURES carry the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

cuts=20
mutants_only=0
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then cuts=$1; shift; fi
if [ "${1:-}" = -mutants-only ]; then mutants_only=1; shift; fi

kernel=$(./scripts/vm-kernel.sh)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for m in nosync ackfirst nobarrier; do
	echo "== mutant $m: must be caught within 20 cuts"
	if ! go test -count=1 -v -timeout 30m -run '^TestPowerCut$' ./test/powercut \
		-powercut.kernel="$kernel" -powercut.cuts=20 -powercut.mutant=$m "$@" >"$out" 2>&1; then
		cat "$out"
		echo "mutant $m was not caught" >&2
		exit 1
	fi
	grep -E 'caught|^FIGURES' "$out"
done
[ $mutants_only = 1 ] && exit 0
echo "== $cuts power cuts of the agent"
timeout=$((30 + cuts))m
exec go test -count=1 -v -timeout "$timeout" -run '^TestPowerCut$' ./test/powercut \
	-powercut.kernel="$kernel" -powercut.cuts="$cuts" "$@"
