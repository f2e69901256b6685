// Package packaging holds the tests of the delivery: scripts/cross-build.sh
// (static binaries for the terminals, SHA256SUMS, reproducibility, the armv7
// size limit), the systemd unit configs/taxi-agent.service (systemd-analyze
// verify and security) and the Debian packages built from packaging/ with
// nfpm (contents, conffiles, maintainer scripts, and a real install into a
// throwaway overlay of the root file system).
//
// The package has no code of its own; `go test ./test/packaging` runs it.
// Tests that need a missing tool (systemd-analyze, dpkg-deb) or root skip
// with a message naming it; scripts/test.sh installs the tools when it can.
package packaging
