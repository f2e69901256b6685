package powercut

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Initramfs builds an uncompressed initramfs (cpio "newc"), which the
// kernel unpacks as its first root file system.
type Initramfs struct {
	w   io.Writer
	ino uint32
	err error
}

// NewInitramfs writes an archive to w; Close writes its trailer.
func NewInitramfs(w io.Writer) *Initramfs { return &Initramfs{w: w, ino: 1} }

func (a *Initramfs) entry(name string, mode, major, minor uint32, data []byte) {
	if a.err != nil {
		return
	}
	a.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		a.ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	var b bytes.Buffer
	b.WriteString(hdr)
	b.WriteString(name)
	b.WriteByte(0)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	_, a.err = a.w.Write(b.Bytes())
}

// Dir adds a directory.
func (a *Initramfs) Dir(name string) { a.entry(name, 0o040755, 0, 0, nil) }

// File adds a regular file.
func (a *Initramfs) File(name string, perm uint32, data []byte) {
	a.entry(name, 0o100000|perm, 0, 0, data)
}

// CharDev adds a character device node.
func (a *Initramfs) CharDev(name string, major, minor uint32) {
	a.entry(name, 0o020600, major, minor, nil)
}

// Close writes the trailer and returns the first error.
func (a *Initramfs) Close() error {
	a.entry("TRAILER!!!", 0, 0, 0, nil)
	return a.err
}

// ModuleOrder returns the .ko files under modDir (a kernel's
// /lib/modules/VERSION) that the named modules need, dependencies first,
// from the "depends=" field of each module's .modinfo section: what
// modprobe would load, without depmod.
func ModuleOrder(modDir string, names ...string) ([]string, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".ko") {
			paths[normMod(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		name = normMod(name)
		if seen[name] {
			return nil
		}
		seen[name] = true
		p, ok := paths[name]
		if !ok {
			return fmt.Errorf("module %s: not under %s (built in?)", name, modDir)
		}
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func normMod(n string) string { return strings.ReplaceAll(n, "-", "_") }

func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// ModuleName is the name a .ko file loads as.
func ModuleName(path string) string {
	return normMod(strings.TrimSuffix(filepath.Base(path), ".ko"))
}

// readAll reads a file or fails with its name.
func readAll(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
