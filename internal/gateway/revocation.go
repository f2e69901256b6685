package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Revocations is the revocation list: a text file with one certificate
// serial (hex, as SerialString writes it) per line; "#" starts a comment.
// Revoked checks the file's identity (inode, size, modification time) on
// every call and re-reads it when it changed, so a revocation takes effect
// at the next handshake or request, without a restart. A list that cannot
// be read keeps the last good one and is logged once.
type Revocations struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	stamp   fileStamp
	serials map[string]bool
	broken  bool
}

type fileStamp struct {
	ino, size int64
	mtime     time.Time
}

// NewRevocations reads the list at path. A missing file is an empty list;
// log may be nil.
func NewRevocations(path string, log *slog.Logger) (*Revocations, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Revocations{path: path, log: log, serials: map[string]bool{}}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Revoked reports whether serial (as SerialString writes it) is revoked.
func (r *Revocations) Revoked(serial string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		if !r.broken {
			r.log.Error("revocation list unreadable; keeping the last one read", "path", r.path, "err", err)
			r.broken = true
		}
	} else if r.broken {
		r.log.Info("revocation list readable again", "path", r.path)
		r.broken = false
	}
	return r.serials[strings.TrimLeft(strings.ToUpper(serial), "0")]
}

// Len is the number of revoked serials.
func (r *Revocations) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.serials)
}

// reload re-reads the file if it changed; r.mu is held (or r is new).
func (r *Revocations) reload() error {
	fi, err := os.Stat(r.path)
	if os.IsNotExist(err) {
		r.serials, r.stamp = map[string]bool{}, fileStamp{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read revocation list: %w", err)
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	if st == r.stamp && r.stamp != (fileStamp{}) {
		return nil
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("read revocation list: %w", err)
	}
	serials, err := ParseRevocations(data)
	if err != nil {
		return err
	}
	n := len(r.serials)
	r.serials, r.stamp = serials, st
	if len(serials) != n {
		r.log.Info("revocation list loaded", "path", r.path, "revoked", len(serials))
	}
	return nil
}

// ParseRevocations reads a revocation list: a serial in hex per line,
// comments after "#", blank lines ignored. A line that is not hex is an
// error naming it: a typo must not leave a certificate valid.
func ParseRevocations(data []byte) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.ToUpper(strings.TrimSpace(line))
		if line == "" {
			continue
		}
		for _, c := range line {
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
				return nil, fmt.Errorf("read revocation list: line %d: %q is not a hex serial", n, line)
			}
		}
		out[strings.TrimLeft(line, "0")] = true
	}
	return out, sc.Err()
}

// Revoke appends serials to the list at path, each with a comment, and
// syncs it.
func Revoke(path string, serials []string, comment string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer f.Close()
	var b strings.Builder
	for _, s := range serials {
		fmt.Fprintf(&b, "%s # %s\n", strings.ToUpper(s), comment)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}
