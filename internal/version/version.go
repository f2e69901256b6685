// Package version carries the build stamp of the agent binary: version,
// commit and build time, set with -ldflags -X by scripts/cross-build.sh and
// read from the module's build info otherwise.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Set with -ldflags "-X taxi-agent/internal/version.Version=…" and friends.
var (
	// Version is the release name, e.g. v0.1.0.
	Version = ""
	// Commit is the git commit the binary was built from.
	Commit = ""
	// BuildTime is the commit time in RFC 3339, UTC.
	BuildTime = ""
)

// floor is the earliest time any build of this project can carry. A wall
// clock before it is certainly wrong (a board without RTC battery boots in
// 1970).
var floor = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Info is what `agent version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildTime string `json:"build_time"`
	Go        string `json:"go"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GOARM     string `json:"goarm,omitempty"`
}

// Get returns the stamp, filling gaps from debug.ReadBuildInfo.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, BuildTime: BuildTime,
		Go: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.BuildTime == "" {
					info.BuildTime = s.Value
				}
			case "GOARM":
				info.GOARM = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String is the one-line form.
func (i Info) String() string {
	arch := i.GOARCH
	if i.GOARM != "" {
		arch += "/v" + strings.TrimPrefix(i.GOARM, "v")
	}
	return fmt.Sprintf("taxi-agent %s (commit %s, built %s, %s, %s/%s)",
		i.Version, orUnknown(i.Commit), orUnknown(i.BuildTime), i.Go, i.GOOS, arch)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// TrustedAfter is the time before which the wall clock is not trusted: the
// build time when known, else a fixed floor.
func TrustedAfter() time.Time {
	if t, err := time.Parse(time.RFC3339, Get().BuildTime); err == nil && t.After(floor) {
		return t
	}
	return floor
}
