#!/usr/bin/env bash
# The project's test command: what a newcomer runs and what CI runs.
# It installs the few Debian tools the tests need when run as root (among
# them redis-server, for the gateway replicas sharing one limit), then
# vets and runs every test with the race detector, and runs the package
# tests again for armv7, the architecture we ship, under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v ip >/dev/null || need+=(iproute2)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v file >/dev/null || need+=(file)
command -v redis-server >/dev/null || need+=(redis-server)
command -v qemu-arm-static >/dev/null || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: missing ${need[*]}; tests that need them will skip" >&2
  fi
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted: $unformatted" >&2
  exit 1
fi
# took NAME START: how long a step took, for the budget of .ci/run.
took() { echo "test.sh: $1 took $((SECONDS - $2)) s" >&2; }

t0=$SECONDS
# vet with the tests' build flags: the packages it compiles for their
# export data are then the race-instrumented ones the tests need, and a
# cold run compiles the standard library and every dependency for amd64
# once instead of twice (only test/harness/race_off.go, one constant, is
# left out of vet by its !race build tag).
# Most suites wait on real time (rates, backoffs, child processes) more
# than they compute: four packages at once (-p 4) keep the two cores busy.
go vet -race ./...
go test -race -p 4 -count=1 -timeout 20m ./...
took "vet and the tests with -race" "$t0"

# Test where we ship: the package tests (internal/, cmd/) built for armv7
# (GOARCH=arm GOARM=7: 32-bit int, 64-bit atomics that need alignment) and
# run under Debian's qemu-user-static. The race detector does not exist for
# 32-bit ARM. Tests that start a copy of their own binary read the emulator
# from TAXI_AGENT_TEST_EMULATOR and start the child through it
# (internal/testsupport.Command). The tests wait on the emulated CPU more
# than they compute, so four packages run at once (-p 4): on this 2-core
# machine that halves the step. -short leaves out the two demos (their
# pipeline runs natively above, and under emulation they take minutes);
# the children, the meter, the outbox and every unit test still run.
# -trimpath, as scripts/cross-build.sh builds the shipped armv7 binary
# (test/packaging ran it above): the standard library and the
# dependencies are then compiled for armv7 once, not twice (with an empty
# build cache, 15 compiles for internal/meter's tests instead of 185).
# ARMV7_TESTS=0 skips the step.
if [ "${ARMV7_TESTS:-1}" != 0 ]; then
  if emu=$(command -v qemu-arm-static); then
    t0=$SECONDS
    GOARCH=arm GOARM=7 go test -short -trimpath -p 4 -count=1 -timeout 20m \
      -exec "env TAXI_AGENT_TEST_EMULATOR=$emu $emu" ./internal/... ./cmd/...
    took "the armv7 package tests under qemu" "$t0"
  else
    echo "note: qemu-arm-static missing (apt-get install qemu-user-static); armv7 tests skipped" >&2
  fi
fi

# Bad input: fuzz the meter frame decoder, the config parser and the outbox
# file's validation (pages of a real file mutated) for a short while
# (FUZZTIME, default 6s each); a crasher is saved under the package's
# testdata/fuzz and fails the run.
t0=$SECONDS
for target in "FuzzDecode ./internal/meter" "FuzzParse ./internal/config" "FuzzValidate ./internal/outbox"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "${FUZZTIME:-6s}" "$2"
done
took "fuzzing" "$t0"
echo "test.sh: all passed in $SECONDS s" >&2
