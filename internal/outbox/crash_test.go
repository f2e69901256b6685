package outbox

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taxi-agent/internal/testsupport"
)

var flagKills = flag.Int("outbox.kills", 200, "SIGKILLs in TestCrashLosesNothing")

// crashChild enqueues, re-sends, fails, dead-letters, retries and delivers
// in a loop, printing each step once it is durable:
//
//	E id   enqueued        D id   delivered
//	X id   dead-lettered   R id   retried (pending again)
//
// It runs until it is killed.
func crashChild(path string) int {
	o, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	say := func(format string, args ...any) {
		// One write per line: a pipe write this small is atomic.
		_, _ = os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	say("ready")
	pid := os.Getpid()
	for i := 0; ; i++ {
		r := event(i)
		r.Identity = fmt.Sprintf("crash|%d|%d", pid, i)
		id, dup, err := o.Enqueue(r)
		if err != nil || dup {
			say("error enqueue %v %v", dup, err)
			return 1
		}
		say("E %d", id)
		if i%5 == 0 {
			if again, dup, err := o.Enqueue(r); err != nil || !dup || again != id {
				say("error re-sent frame: %d %v %v", again, dup, err)
				return 1
			}
		}
		head, ok, err := o.Head()
		if err != nil || !ok {
			say("error head %v %v", ok, err)
			return 1
		}
		now := time.Now()
		switch i % 4 {
		case 0, 1:
			err = o.MarkDelivered(head.ID, now)
			say("D %d", head.ID)
		case 2:
			err = o.RecordFailure(head.ID, AttemptError{At: now, Status: 503}, now)
		case 3:
			if err = o.DeadLetter(head.ID, AttemptError{At: now, Status: 400}, "bad"); err == nil {
				say("X %d", head.ID)
				err = o.Retry(head.ID)
				say("R %d", head.ID)
			}
		}
		if err != nil {
			say("error %v", err)
			return 1
		}
	}
}

// TestCrashLosesNothing kills a writing child with SIGKILL at random
// moments and checks after each kill that every id it reported durable is
// there in the state it reported, that nothing is corrupt, and that ids are
// never reused.
func TestCrashLosesNothing(t *testing.T) {
	cycles := *flagKills
	if testing.Short() {
		cycles = min(cycles, 20) // a short run still kills children (under emulation too)
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	state := map[uint64]byte{} // last durable step reported per id
	var maxSeen uint64         // highest id in the file at the last check
	var kills, earlyKills, reported, delivered int
	start := time.Now()

	for cycle := range cycles {
		cmd, lines := startCrashChild(t, path)
		if rng.IntN(10) == 0 {
			// Sometimes kill it while it is still opening the file.
			time.Sleep(time.Duration(rng.IntN(5000)) * time.Microsecond)
			earlyKills++
		} else {
			select {
			case <-lines.ready:
			case <-time.After(30 * time.Second):
				t.Fatal("crash child never got ready")
			}
			time.Sleep(time.Duration(rng.IntN(10000)) * time.Microsecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		steps := lines.wait(t)
		firstE := true
		for _, s := range steps {
			if s.op == 'E' {
				if firstE && s.id <= maxSeen {
					t.Fatalf("cycle %d: enqueue reused id %d (file had up to %d)", cycle, s.id, maxSeen)
				}
				firstE = false
				reported++
			}
			if s.op == 'D' {
				delivered++
			}
			state[s.id] = s.op
		}
		maxSeen = verifyAfterCrash(t, path, state, cycle)
	}
	t.Logf("crash test: %d cycles, %d SIGKILLs (%d while opening), %d ids reported durable (%d delivered), lost=0, corrupt=0, in %v",
		cycles, kills, earlyKills, reported, delivered, time.Since(start).Round(time.Millisecond))
}

// verifyAfterCrash opens the file and checks every reported step. It
// returns the highest id present.
func verifyAfterCrash(t *testing.T, path string, state map[uint64]byte, cycle int) uint64 {
	t.Helper()
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer o.Close()
	if q := o.Quarantined(); q != nil {
		t.Fatalf("cycle %d: file corrupt after SIGKILL: %v", cycle, q)
	}
	for id, op := range state {
		r, err := o.Get(id)
		if err != nil {
			t.Fatalf("cycle %d: id %d reported durable (%c) is lost: %v", cycle, id, op, err)
		}
		// Delivered is final; after any other step an unreported later
		// step may have committed before the kill.
		if op == 'D' && r.State != Delivered {
			t.Fatalf("cycle %d: id %d reported delivered is %s", cycle, id, r.State)
		}
	}
	s, err := o.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var maxID uint64
	for _, st := range allStates {
		ids := listAll(t, o, st, MaxListLimit)
		if want := map[State]uint64{Pending: s.Pending, Dead: s.Dead, Delivered: s.Delivered}[st]; uint64(len(ids)) != want {
			t.Fatalf("cycle %d: counter says %d %s, the bucket has %d", cycle, want, st, len(ids))
		}
		if n := len(ids); n > 0 {
			maxID = max(maxID, ids[n-1])
		}
	}
	return maxID
}

type step struct {
	op byte
	id uint64
}

type childLines struct {
	ready chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	steps []step
	err   string
}

func (c *childLines) wait(t *testing.T) []step {
	t.Helper()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != "" {
		t.Fatalf("crash child: %s", c.err)
	}
	return c.steps
}

func startCrashChild(t *testing.T, path string) (*exec.Cmd, *childLines) {
	t.Helper()
	cmd := testsupport.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrash+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childLines{ready: make(chan struct{}), done: make(chan struct{})}
	go parseSteps(stdout, c)
	return cmd, c
}

func parseSteps(r io.Reader, c *childLines) {
	defer close(c.done)
	br := bufio.NewReader(r)
	readyOnce := sync.OnceFunc(func() { close(c.ready) })
	defer readyOnce()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return // EOF; a fragment without newline was not durable
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "ready" {
			readyOnce()
			continue
		}
		op, idText, ok := strings.Cut(line, " ")
		id, perr := strconv.ParseUint(idText, 10, 64)
		if !ok || len(op) != 1 || perr != nil {
			c.mu.Lock()
			c.err = line
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		c.steps = append(c.steps, step{op[0], id})
		c.mu.Unlock()
	}
}
