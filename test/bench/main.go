// Command bench measures the agent binary against floors taken in the same
// run and prints a markdown table; scripts/bench.sh builds the binaries and
// runs it. Figures (see "Guarantees and figures" in README.md):
//
//   - ack latency: last byte of a sign-out frame written into the pseudo-
//     terminal → 0x90 read back, median and p99, against a bare bbolt
//     Update of the same stored bytes on the same disk;
//   - drain rate: a queued outbox delivered to the loopback fake, against
//     a bare sign + POST + verify loop with the same keys and server, and
//     internal/uploader's BenchmarkDrainVsBare (drain loop, in-memory store);
//   - footprint: idle RSS, RSS with a large backlog, CPU over an idle
//     window, stripped armv7 binary size;
//   - flash wear: bytes written per event (enqueue + delivery) from
//     /proc/<pid>/io, against one bare Update;
//   - start-up: exec → READY=1 with a large backlog, against an empty outbox.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"taxi-agent/internal/punchsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	agent := flag.String("agent", "", "agent binary for this machine")
	armv7 := flag.String("armv7", "", "stripped linux/arm GOARM=7 agent binary (size only)")
	work := flag.String("work", "", "work directory on the disk under test")
	out := flag.String("out", "bench/latest.json", "JSON report")
	events := flag.Int("events", 1000, "events timed for ack latency and flash wear")
	drain := flag.Int("drain", 10_000, "queued events for the drain rate")
	pending := flag.Int("pending", 100_000, "pending events for RSS and start-up with a backlog")
	starts := flag.Int("starts", 5, "start-ups timed with and without the backlog")
	idle := flag.Duration("idle", 60*time.Second, "idle window for the CPU figure")
	flag.Parse()
	if *agent == "" || *work == "" {
		return fmt.Errorf("-agent and -work are required (run scripts/bench.sh)")
	}
	rep := newReport(*work)
	say := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}

	keys, err := punchsim.GenerateKeys(filepath.Join(*work, "keys"))
	if err != nil {
		return err
	}
	srv, err := punchsim.New(keys, punchsim.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()

	say("building a queued outbox for the floor's record bytes")
	sample := filepath.Join(*work, "sample.db")
	if err := fillOutbox(sample, 1, 64); err != nil {
		return err
	}
	value, err := storedRecord(sample)
	if err != nil {
		return err
	}

	say("ack latency and flash wear: %d sign-outs, each delivered before the next", *events)
	ack, err := measureAck(*agent, *work, srv, value, *events)
	if err != nil {
		return fmt.Errorf("ack latency: %w", err)
	}
	rep.ack(ack, len(value))

	say("drain rate: %d queued events", *drain)
	dr, err := measureDrain(*agent, *work, srv, *drain)
	if err != nil {
		return fmt.Errorf("drain rate: %w", err)
	}
	rep.drain(dr)
	say("drain loop benchmark: go test -bench DrainVsBare ./internal/uploader/")
	if ratio, dRate, bRate, err := uploaderBench(); err != nil {
		say("skipped: %v", err)
	} else {
		rep.uploaderDrain(ratio, dRate, bRate)
	}

	say("idle: %s of CPU time measured", *idle)
	id, err := measureIdle(*agent, *work, srv, *idle)
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	say("backlog: %d pending events, %d start-ups with and without", *pending, *starts)
	bl, err := measureBacklog(*agent, *work, srv, *pending, *starts)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	rep.footprint(id, bl)
	if *armv7 != "" {
		size, err := fileSize(*armv7)
		if err != nil {
			return err
		}
		rep.binary(size)
	}
	rep.wear(ack)
	rep.startup(bl)

	fmt.Print(rep.markdown())
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	say("wrote %s", *out)
	return nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
