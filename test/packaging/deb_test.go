package packaging

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// debPath finds the one package built for a Debian architecture.
func debPath(tb testing.TB, dist, arch string) string {
	tb.Helper()
	matches, err := filepath.Glob(filepath.Join(dist, "taxi-agent_*-1_"+arch+".deb"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(matches) != 1 {
		tb.Fatalf("want one taxi-agent .deb for %s in %s, found %q", arch, dist, matches)
	}
	return matches[0]
}

// TestDebControl checks the control fields, conffiles and maintainer scripts
// of each package with dpkg-deb.
func TestDebControl(t *testing.T) {
	requireTool(t, "dpkg-deb", "dpkg")
	dist := crossBuild(t)
	version := regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*-1$`)
	for _, d := range debs {
		t.Run(d.arch, func(t *testing.T) {
			deb := debPath(t, dist, d.arch)
			fields := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(output(t, "dpkg-deb", "-f", deb, "Package", "Architecture", "Version", "Depends")), "\n") {
				k, v, _ := strings.Cut(line, ": ")
				fields[k] = v
			}
			if fields["Package"] != "taxi-agent" || fields["Architecture"] != d.arch || fields["Depends"] != "adduser" {
				t.Errorf("control fields %q, want Package taxi-agent, Architecture %s, Depends adduser", fields, d.arch)
			}
			if !version.MatchString(fields["Version"]) || !strings.Contains(filepath.Base(deb), "_"+fields["Version"]+"_") {
				t.Errorf("Version %q: not a Debian version matching the file name %s", fields["Version"], filepath.Base(deb))
			}

			if got := output(t, "dpkg-deb", "-I", deb, "conffiles"); got != "/etc/taxi-agent/agent.toml\n" {
				t.Errorf("conffiles = %q, want /etc/taxi-agent/agent.toml", got)
			}

			postinst := output(t, "dpkg-deb", "-I", deb, "postinst")
			for _, want := range []string{"adduser --system", "dialout", "chown \"root:$user\" \"$confdir\""} {
				if !strings.Contains(postinst, want) {
					t.Errorf("postinst lacks %q", want)
				}
			}
			for _, script := range []string{"prerm", "postrm"} {
				if !strings.HasPrefix(output(t, "dpkg-deb", "-I", deb, script), "#!/bin/sh\n") {
					t.Errorf("%s is not a shell script", script)
				}
			}
		})
	}
}

// TestDebContents checks each package's files with dpkg-deb: the right
// binary, the unit and the example config, with the right owners and modes.
func TestDebContents(t *testing.T) {
	requireTool(t, "dpkg-deb", "dpkg")
	dist := crossBuild(t)
	root := sourceDir(t)
	for _, d := range debs {
		t.Run(d.arch, func(t *testing.T) {
			deb := debPath(t, dist, d.arch)
			want := []struct {
				path   string
				mode   int64
				source string // file the content must equal
			}{
				{"./usr/bin/taxi-agent", 0o755, filepath.Join(dist, d.binary)},
				{"./usr/lib/systemd/system/taxi-agent.service", 0o644, filepath.Join(root, "configs", "taxi-agent.service")},
				{"./etc/taxi-agent/agent.toml", 0o644, filepath.Join(root, "configs", "agent.example.toml")},
				{"./etc/taxi-agent/", 0o750, ""},
			}
			files := debFiles(t, deb)
			for _, w := range want {
				f, ok := files[w.path]
				if !ok {
					t.Errorf("%s missing from the package", w.path)
					continue
				}
				if f.hdr.Uname != "root" || f.hdr.Gname != "root" || f.hdr.Mode&0o7777 != w.mode {
					t.Errorf("%s is %s:%s %04o, want root:root %04o", w.path, f.hdr.Uname, f.hdr.Gname, f.hdr.Mode&0o7777, w.mode)
				}
				if w.source == "" {
					continue
				}
				src, err := os.ReadFile(w.source)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(f.data, src) {
					t.Errorf("%s differs from %s", w.path, w.source)
				}
			}
			// The human listing agrees with the archive.
			listing := output(t, "dpkg-deb", "-c", deb)
			for _, w := range want {
				if !strings.Contains(listing, " "+w.path+"\n") {
					t.Errorf("dpkg-deb -c does not list %s:\n%s", w.path, listing)
				}
			}
		})
	}
}

type debFile struct {
	hdr  *tar.Header
	data []byte
}

// debFiles reads the data archive of a package through dpkg-deb.
func debFiles(tb testing.TB, deb string) map[string]debFile {
	tb.Helper()
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	files := map[string]debFile{}
	tr := tar.NewReader(out)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("read %s: %v", deb, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			tb.Fatalf("read %s from %s: %v", hdr.Name, deb, err)
		}
		files[hdr.Name] = debFile{hdr, data}
	}
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("dpkg-deb --fsys-tarfile %s: %v\n%s", deb, err, stderr.String())
	}
	return files
}
