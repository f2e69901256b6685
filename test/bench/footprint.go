package main

import (
	"fmt"
	"slices"
	"time"

	"taxi-agent/internal/punchsim"
)

// idleResult is the agent at rest: memory and CPU with nothing to do.
type idleResult struct {
	Memory memory
	CPU    time.Duration // user + system over Window
	Window time.Duration
}

// measureIdle starts the agent with an empty outbox, the meter line
// connected and the endpoint online, lets it settle, then reads its CPU
// time over window and its memory at the end.
func measureIdle(bin, work string, srv *punchsim.Server, window time.Duration) (idleResult, error) {
	res := idleResult{Window: window}
	t, err := newTerminal(bin, work, "idle", srv)
	if err != nil {
		return res, err
	}
	defer t.close()
	a, logs, _, err := t.start()
	if err != nil {
		return res, err
	}
	defer a.Close()
	time.Sleep(2 * time.Second)
	c0, err := readCPU(a.Pid())
	if err != nil {
		return res, err
	}
	time.Sleep(window)
	c1, err := readCPU(a.Pid())
	if err != nil {
		return res, err
	}
	res.CPU = c1 - c0
	if res.Memory, err = readMemory(a.Pid()); err != nil {
		return res, err
	}
	return res, stop(a, logs)
}

// backlogResult is the agent with a large backlog it cannot send.
type backlogResult struct {
	Pending      int
	Memory       memory
	StartFull    []time.Duration // exec → READY with the backlog
	StartEmpty   []time.Duration // exec → READY with an empty outbox
	OutboxBytes  int64
	settleMemory time.Duration
}

// measureBacklog fills an outbox with pending events, takes the endpoint
// offline so that they stay pending, and starts the agent on it starts
// times (exec → READY), reading its memory a few seconds after the first
// start; then as many starts on an empty outbox for comparison.
func measureBacklog(bin, work string, srv *punchsim.Server, pending, starts int) (backlogResult, error) {
	res := backlogResult{Pending: pending, settleMemory: 3 * time.Second}
	full, err := newTerminal(bin, work, "backlog", srv)
	if err != nil {
		return res, err
	}
	defer full.close()
	if err := fillOutbox(full.cfg.Outbox.Path, pending, full.cfg.Outbox.MaxSizeMiB); err != nil {
		return res, err
	}
	if res.OutboxBytes, err = fileSize(full.cfg.Outbox.Path); err != nil {
		return res, err
	}
	empty, err := newTerminal(bin, work, "empty", srv)
	if err != nil {
		return res, err
	}
	defer empty.close()

	if err := srv.Stop(); err != nil {
		return res, err
	}
	defer srv.Start()
	for i := range starts {
		for _, t := range []*terminal{full, empty} {
			a, logs, ready, err := t.start()
			if err != nil {
				return res, err
			}
			if t == full {
				res.StartFull = append(res.StartFull, ready)
				if i == 0 {
					time.Sleep(res.settleMemory)
					if res.Memory, err = readMemory(a.Pid()); err != nil {
						a.Close()
						return res, err
					}
				}
			} else {
				res.StartEmpty = append(res.StartEmpty, ready)
			}
			if err := stop(a, logs); err != nil {
				return res, fmt.Errorf("stop: %w", err)
			}
		}
	}
	return res, nil
}

// quantile returns the q-quantile (0 ≤ q ≤ 1) of ds, nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}
