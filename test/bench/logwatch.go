package main

import (
	"bytes"
	"strings"
	"sync"
)

// logWatch receives the agent's log lines through a pipe (so that logging
// does not count as the agent's disk writes), counts deliveries and keeps
// the last lines for an error message.
type logWatch struct {
	mu        sync.Mutex
	partial   []byte
	delivered int
	tail      []string
	changed   chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if strings.Contains(line, `msg="punch delivered"`) {
			w.delivered++
		}
		if len(w.tail) == 40 {
			w.tail = w.tail[1:]
		}
		w.tail = append(w.tail, line)
	}
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

// Delivered is how many "punch delivered" lines the agent has logged.
func (w *logWatch) Delivered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.delivered
}

// waitDelivered blocks until n deliveries have been logged or done closes.
func (w *logWatch) waitDelivered(n int, done <-chan struct{}) bool {
	for {
		w.mu.Lock()
		ok, ch := w.delivered >= n, w.changed
		w.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// Tail returns the last lines logged.
func (w *logWatch) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}
