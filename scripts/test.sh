#!/usr/bin/env bash
# The project's test command: what a newcomer runs and what CI runs.
# It installs the few Debian tools the tests need when run as root (redis-server
# for the gateway replicas sharing one limit), then
# vets and runs every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v ip >/dev/null || need+=(iproute2)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v file >/dev/null || need+=(file)
command -v redis-server >/dev/null || need+=(redis-server)
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
go vet ./...
go test -race -count=1 -timeout 20m ./...

# Bad input: fuzz the meter frame decoder and the config parser for a short
# while (FUZZTIME, default 10s each); a crasher is saved under the package's
# testdata/fuzz and fails the run.
for target in "FuzzDecode ./internal/meter" "FuzzParse ./internal/config"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "${FUZZTIME:-10s}" "$2"
done
