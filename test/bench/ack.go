package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// ackResult is the ack latency and flash wear of one run.
type ackResult struct {
	Events             int
	Agent, Bare        []time.Duration // per event, in order
	AgentBytesPerEvent float64         // write_bytes of the agent per event: enqueue + delivery
	BareBytesPerUpdate float64         // write_bytes of one bare Update
}

// settle is how long the benchmark waits after the agent logged a
// delivery before the next event, so that the delivery's commit does not
// overlap the next enqueue: a taxi's events come minutes apart.
const settle = 20 * time.Millisecond

// measureAck writes sign-out frames (0x00E4: the message a standard meter
// waits on; a sign-in is not answered) into the pseudo-terminal and times
// each from its last byte written to the 0x90 read back; after each delivery it
// times a bare bbolt Update (default options, fsync) of the same stored
// bytes under the next key, in a file beside the outbox, so that both see
// the same disk at the same moments.
func measureAck(bin, work string, srv *punchsim.Server, value []byte, events int) (ackResult, error) {
	res := ackResult{Events: events}
	t, err := newTerminal(bin, work, "ack", srv)
	if err != nil {
		return res, err
	}
	defer t.close()
	a, logs, _, err := t.start()
	if err != nil {
		return res, err
	}
	defer a.Close()

	db, err := bolt.Open(filepath.Join(t.dir, "bare.db"), 0o600, nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("q")); return err }); err != nil {
		return res, err
	}

	answers := make(chan meter.Frame, 16)
	go readAnswers(t, answers)
	pid := strconv.Itoa(a.Pid())
	base := time.Now()
	const warm = 20
	var agentStart, bareWrites int64
	for i := range warm + events {
		f := harness.ShiftOf(i+1, base).SignOutFrame(false)
		wire := meter.AppendFrame(nil, f)
		if i == warm {
			if agentStart, err = readWriteBytes(pid); err != nil {
				return res, err
			}
		}
		if _, err := t.line.Master.Write(wire); err != nil {
			return res, fmt.Errorf("write frame: %w", err)
		}
		t0 := time.Now()
		var lat time.Duration
		select {
		case ans := <-answers:
			lat = time.Since(t0)
			if ans.Command != meter.CmdSignOut || len(ans.Data) == 0 || ans.Data[len(ans.Data)-1] != meter.ResultOK {
				return res, fmt.Errorf("event %d answered % x", i, ans.Data)
			}
		case <-time.After(10 * time.Second):
			return res, fmt.Errorf("event %d: no answer\n%s", i, logs.Tail())
		}
		if !logs.waitDelivered(i+1, timeout(30*time.Second)) {
			return res, fmt.Errorf("event %d: not delivered\n%s", i, logs.Tail())
		}
		time.Sleep(settle)

		s0, err := readWriteBytes("self")
		if err != nil {
			return res, err
		}
		b0 := time.Now()
		err = db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("q")).Put(binary.BigEndian.AppendUint64(nil, uint64(i+1)), value)
		})
		bare := time.Since(b0)
		if err != nil {
			return res, err
		}
		s1, err := readWriteBytes("self")
		if err != nil {
			return res, err
		}
		if i < warm {
			continue
		}
		res.Agent = append(res.Agent, lat)
		res.Bare = append(res.Bare, bare)
		bareWrites += s1 - s0
	}
	agentEnd, err := readWriteBytes(pid)
	if err != nil {
		return res, err
	}
	res.AgentBytesPerEvent = float64(agentEnd-agentStart) / float64(events)
	res.BareBytesPerUpdate = float64(bareWrites) / float64(events)
	return res, stop(a, logs)
}

// readAnswers decodes the agent's frames from the meter's end of the line
// until it is closed.
func readAnswers(t *terminal, out chan<- meter.Frame) {
	var d meter.Decoder
	buf := make([]byte, 512)
	for {
		n, err := t.line.Master.Read(buf)
		if n > 0 {
			d.Write(buf[:n])
			for {
				f, err := d.Next()
				if errors.Is(err, meter.ErrNeedMore) {
					break
				}
				if err == nil {
					f.Data = append([]byte(nil), f.Data...)
					out <- f
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func timeout(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}
