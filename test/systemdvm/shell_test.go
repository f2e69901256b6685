package systemdvm

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// shell drives root's login shell on the VM's console (ttyS0).
type shell struct {
	conn net.Conn

	mu      sync.Mutex
	out     strings.Builder
	changed chan struct{}
	done    chan struct{}
	seq     int
}

func newShell(c net.Conn) *shell {
	s := &shell{conn: c, changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			s.mu.Lock()
			s.out.WriteString(strings.ReplaceAll(string(buf[:n]), "\r", ""))
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// waitFor waits until re matches the console output after offset from and
// returns the match and the offset after it.
func (s *shell) waitFor(from int, re *regexp.Regexp, timeout time.Duration) ([]string, int, error) {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		text := s.out.String()
		ch := s.changed
		s.mu.Unlock()
		if from <= len(text) {
			if loc := re.FindStringSubmatchIndex(text[from:]); loc != nil {
				m := []string{}
				for i := 0; i < len(loc); i += 2 {
					m = append(m, text[from+loc[i]:from+loc[i+1]])
				}
				return m, from + loc[1], nil
			}
		}
		select {
		case <-ch:
		case <-s.done:
			return nil, 0, fmt.Errorf("console closed while waiting for %s", re)
		case <-deadline:
			return nil, 0, fmt.Errorf("no %s on the console within %s; last output:\n%s", re, timeout, tail(text, 1500))
		}
	}
}

func (s *shell) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Len()
}

// Output is everything the console printed.
func (s *shell) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// login waits for the autologin shell and makes it quiet: no echo, no
// prompt, no pager, no colours.
func (s *shell) login(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	re := regexp.MustCompile(`@@UP-(\d+)@@`)
	for time.Now().Before(deadline) {
		from := s.len()
		// Typed before the getty runs, this is lost; try again.
		fmt.Fprintf(s.conn, "stty -echo; PS1= PS2=; export SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 TERM=dumb; echo @@UP-$((6*7))@@\n")
		if _, _, err := s.waitFor(from, re, 5*time.Second); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no shell on the console within %s; last output:\n%s", timeout, tail(s.Output(), 1500))
}

// run runs a shell command and returns its output (stdout and stderr) and
// exit status.
func (s *shell) run(cmd string, timeout time.Duration) (string, int, error) {
	s.seq++
	from := s.len()
	re := regexp.MustCompile(fmt.Sprintf(`(?s)@@BEGIN-%d@@\n(.*)@@END-%d-(\d+)@@`, s.seq, s.seq))
	fmt.Fprintf(s.conn, "echo @@BEGIN-%d@@; { %s\n} </dev/null 2>&1; echo @@END-%d-$?@@\n", s.seq, cmd, s.seq)
	m, _, err := s.waitFor(from, re, timeout)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", cmd, err)
	}
	rc, _ := strconv.Atoi(m[2])
	return m[1], rc, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
