package packaging

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBinaries checks each cross-built binary: a static executable ELF for
// the right machine, built by the go command with the settings the issue
// asks for, and the armv7 one no larger than 12 MiB.
func TestBinaries(t *testing.T) {
	dist := crossBuild(t)
	wantMachine := map[string]struct {
		machine elf.Machine
		class   elf.Class
	}{
		"arm":   {elf.EM_ARM, elf.ELFCLASS32},
		"arm64": {elf.EM_AARCH64, elf.ELFCLASS64},
		"amd64": {elf.EM_X86_64, elf.ELFCLASS64},
	}
	for _, b := range binaries {
		t.Run(b.name, func(t *testing.T) {
			path := filepath.Join(dist, b.name)
			f, err := elf.Open(path)
			if err != nil {
				t.Fatalf("open ELF: %v", err)
			}
			defer f.Close()
			want := wantMachine[b.goarch]
			if f.Machine != want.machine || f.Class != want.class {
				t.Errorf("ELF is %v %v, want %v %v", f.Class, f.Machine, want.class, want.machine)
			}
			if f.Type != elf.ET_EXEC {
				t.Errorf("ELF type %v, want ET_EXEC", f.Type)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("has program header %v: not a static binary", p.Type)
				}
			}

			bi, err := buildinfo.ReadFile(path)
			if err != nil {
				t.Fatalf("read build info: %v", err)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			wantSettings := map[string]string{
				"GOOS": "linux", "GOARCH": b.goarch, "GOARM": b.goarm,
				"CGO_ENABLED": "0", "-trimpath": "true", "vcs": "",
			}
			for k, v := range wantSettings {
				if settings[k] != v {
					t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
				}
			}
			if bi.Path != "taxi-agent/cmd/agent" {
				t.Errorf("main package %q, want taxi-agent/cmd/agent", bi.Path)
			}

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes (%.2f MiB)", b.name, fi.Size(), float64(fi.Size())/(1<<20))
			if b.name == "taxi-agent_linux_armv7" && fi.Size() > maxArmv7 {
				t.Errorf("armv7 binary is %d bytes, over %d", fi.Size(), maxArmv7)
			}
		})
	}
}

// TestStamp checks that every binary carries the commit and its time, and
// that the binary this machine can run prints them with `version -json`.
func TestStamp(t *testing.T) {
	dist := crossBuild(t)
	commit := git(t, "rev-parse", "HEAD")
	unix, err := strconv.ParseInt(git(t, "log", "-1", "--format=%ct"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	buildTime := time.Unix(unix, 0).UTC().Format(time.RFC3339)

	// -X puts the strings in the data; -trimpath keeps -ldflags out of the
	// build info, so finding them proves the stamp took effect.
	for _, b := range binaries {
		data, err := os.ReadFile(filepath.Join(dist, b.name))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{commit, buildTime} {
			if !bytes.Contains(data, []byte(s)) {
				t.Errorf("%s does not contain the stamp %q", b.name, s)
			}
		}
	}

	bin, err := hostBinary(t, dist)
	if err != nil {
		t.Skip(err)
	}
	var info struct {
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		BuildTime string `json:"build_time"`
	}
	if err := json.Unmarshal([]byte(output(t, bin, "version", "-json")), &info); err != nil {
		t.Fatalf("parse version -json: %v", err)
	}
	if info.Commit != commit {
		t.Errorf("version commit %q, want %q", info.Commit, commit)
	}
	if info.BuildTime != buildTime {
		t.Errorf("version build_time %q, want the commit time %q", info.BuildTime, buildTime)
	}
	wantVersion := "v0.0.0-" // no release tag yet: v0.0.0-<commits>-g<hash>
	if described, err := exec.Command("git", "-C", sourceDir(t), "describe", "--tags", "--match", "v[0-9]*", "--dirty").Output(); err == nil {
		wantVersion = strings.TrimSpace(string(described))
	}
	if !strings.HasPrefix(info.Version, wantVersion) {
		t.Errorf("version %q, want it to start with %q", info.Version, wantVersion)
	}
}

// TestSHA256SUMS checks that SHA256SUMS lists every file built, each with
// its right digest.
func TestSHA256SUMS(t *testing.T) {
	dist := crossBuild(t)
	f, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var listed []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("malformed line %q", sc.Text())
		}
		listed = append(listed, name)
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Errorf("listed file: %v", err)
			continue
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: SHA256SUMS says %s, file is %x", name, sum, got)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	built := builtFiles(t, dist)
	slices.Sort(listed)
	if !slices.Equal(listed, built) {
		t.Errorf("SHA256SUMS lists %q, built %q", listed, built)
	}
	if want := len(binaries) + len(debs) + len(gatewayBinaries) + len(gatewayDebs); len(built) != want {
		t.Errorf("built %d files %q, want %d agent and %d gateway binaries, %d agent and %d gateway packages",
			len(built), built, len(binaries), len(gatewayBinaries), len(debs), len(gatewayDebs))
	}
}

// TestReproducible builds everything a second time from the same snapshot,
// apart from the script's own check, and compares the bytes.
func TestReproducible(t *testing.T) {
	dist := crossBuild(t)
	again := t.TempDir()
	if out, err := runScript(sourceDir(t), nil, "--no-verify", "-o", again); err != nil {
		t.Fatalf("second cross-build: %v\n%s", err, out)
	}
	first, second := builtFiles(t, dist), builtFiles(t, again)
	if !slices.Equal(first, second) {
		t.Fatalf("the builds made different files: %q and %q", first, second)
	}
	for _, name := range append(first, "SHA256SUMS") {
		a, errA := os.ReadFile(filepath.Join(dist, name))
		b, errB := os.ReadFile(filepath.Join(again, name))
		if errA != nil || errB != nil {
			t.Fatalf("read %s: %v, %v", name, errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same commit", name)
		}
	}
	// The script's own check (a build from a copy of the tree at another
	// path) ran in crossBuild; make sure it said so.
	if !strings.Contains(shared.out, "reproducible: a second build from another path is byte-identical") {
		t.Errorf("cross-build.sh did not report its reproducibility check:\n%s", shared.out)
	}
}

// TestArmv7SizeLimit checks that the script fails, before building the
// rest, when the armv7 binary is over the limit.
func TestArmv7SizeLimit(t *testing.T) {
	crossBuild(t) // warm cache; and the limit check is meaningless if building fails
	dir := t.TempDir()
	out, err := runScript(sourceDir(t), []string{"ARMV7_MAX_BYTES=1000"}, "--no-verify", "--no-deb", "-o", dir)
	if err == nil {
		t.Fatalf("cross-build.sh succeeded with a 1000-byte limit:\n%s", out)
	}
	if !strings.Contains(out, "over the limit of 1000") {
		t.Errorf("output does not name the limit:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "taxi-agent_linux_armv6")); err == nil {
		t.Errorf("went on building after the armv7 binary failed the limit")
	}
}

// builtFiles lists the script's outputs in dir (not SHA256SUMS), sorted.
func builtFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "taxi-agent_*"))
	if err != nil {
		tb.Fatal(err)
	}
	gw, err := filepath.Glob(filepath.Join(dir, "taxi-gateway_*"))
	if err != nil {
		tb.Fatal(err)
	}
	matches = append(matches, gw...)
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	slices.Sort(names)
	return names
}
