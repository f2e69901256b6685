package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/daemon"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/uploader"
	"taxi-agent/internal/version"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "-config FILE [-json]", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadToolConfig(*path)
	if err != nil {
		return err
	}
	s, err := admin.Connect(ctx, cfg.Admin.Socket, cfg.Outbox.Path, outbox.Options{ReadOnly: true, MaxSize: cfg.Outbox.MaxSizeMiB << 20})
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	rep := statusReport{
		Pending: st.Outbox.Pending, Dead: st.Outbox.Dead, Delivered: st.Outbox.Delivered,
		OldestPendingAgeSeconds: st.Outbox.OldestPendingAgeSeconds,
		Daemon:                  daemonState{Running: s.Daemon != nil, PID: s.DaemonPID, Socket: cfg.Admin.Socket},
		Outbox:                  st.Outbox, OutboxPath: cfg.Outbox.Path,
	}
	if s.Daemon != nil {
		rep.status = &st
		rep.Version, rep.StartedAt, rep.Uptime, rep.Clock = &st.Version, &st.StartedAt, &st.Uptime, &st.Clock
		rep.Meter, rep.Uploader, rep.Connectivity, rep.Quarantined = &st.Meter, &st.Uploader, st.Connectivity, st.Quarantined
		rep.Held = &st.Held
		if !st.StorageStuckSince.IsZero() {
			rep.StorageStuckSince = &st.StorageStuckSince
		}
	} else {
		rep.Daemon.Error = s.NoDaemon.Error()
		for _, spill := range []string{cfg.Outbox.Path + daemon.SpillSuffix, daemon.RuntimeSpillPath(cfg.Outbox.Path, stoppedRuntimeDir())} {
			if spill == "" {
				continue
			}
			recs, damaged, err := daemon.ReadSpill(spill)
			if len(recs) > 0 || damaged > 0 || err != nil {
				h := heldOnDisk{SpillFile: spill, Events: len(recs), Damaged: damaged}
				if err != nil {
					h.Error = err.Error()
				}
				rep.HeldOnDisk = append(rep.HeldOnDisk, h)
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	return printStatus(stdout, rep, *path, time.Now())
}

// statusReport is what `agent status -json` prints: the counts a script
// checks at the top, the rest nested. Without a daemon only the outbox
// part is there.
type statusReport struct {
	Pending                 uint64       `json:"pending"`
	Dead                    uint64       `json:"dead"`
	Delivered               uint64       `json:"delivered"`
	OldestPendingAgeSeconds int64        `json:"oldest_pending_age_seconds"`
	Daemon                  daemonState  `json:"daemon"`
	OutboxPath              string       `json:"outbox_path"`
	Outbox                  outbox.Stats `json:"outbox"`

	// The daemon's view, when it runs.
	Version   *version.Info      `json:"version,omitempty"`
	StartedAt *time.Time         `json:"started_at,omitempty"`
	Uptime    *admin.Duration    `json:"uptime_seconds,omitempty"`
	Clock     *admin.ClockStatus `json:"clock,omitempty"`
	Meter     *meter.LinkStats   `json:"meter,omitempty"`
	Held      *admin.HeldStatus  `json:"held_in_memory,omitempty"`
	// HeldOnDisk is the spill files an agent left (read while it is
	// stopped): events it held that the outbox has not yet taken.
	HeldOnDisk   []heldOnDisk     `json:"held_on_disk,omitempty"`
	Uploader     *uploader.Status `json:"uploader,omitempty"`
	Connectivity json.RawMessage  `json:"connectivity,omitempty"`
	Quarantined  string           `json:"quarantined,omitempty"`
	// StorageStuckSince is set while an outbox commit has not returned
	// within outbox.commit_timeout; the outbox counts are then not read.
	StorageStuckSince *time.Time `json:"storage_stuck_since,omitempty"`

	status *admin.Status // the same, for the text form
}

// stoppedRuntimeDir is where a stopped agent's runtime spill file is:
// $RUNTIME_DIRECTORY when the command runs inside the unit, else the
// unit's RuntimeDirectory=.
func stoppedRuntimeDir() string {
	if dir := runtimeDir(); dir != "" {
		return dir
	}
	return "/run/taxi-agent"
}

// heldOnDisk is what a stopped agent's spill file holds.
type heldOnDisk struct {
	SpillFile string `json:"spill_file"`
	Events    int    `json:"events"`
	Damaged   int    `json:"damaged_lines,omitempty"`
	Error     string `json:"error,omitempty"`
}

// daemonState says whether the daemon answered.
type daemonState struct {
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	Socket  string `json:"socket"`
	Error   string `json:"error,omitempty"` // why it is taken as not running
}

// printStatus writes the status for a technician: one section per part,
// then hints for what looks wrong.
func printStatus(w io.Writer, r statusReport, configPath string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	var hints []string

	if st := r.status; st != nil {
		line("daemon", "running, pid %d, %s, up %s (since %s)", r.Daemon.PID, st.Version.Version,
			age(time.Duration(st.Uptime)), clockTime(st.StartedAt))
		clock := "trusted"
		if !st.Clock.Trusted {
			clock = "NOT TRUSTED (before " + clockTime(st.Clock.TrustedAfter) + "): new events are held or take the meter's time"
			hints = append(hints, "the wall clock is wrong (no RTC battery or no time sync yet); events wait for it")
		}
		line("clock", "%s, now %s", clock, clockTime(st.Clock.Now))
		hints = append(hints, syncLines(line, st.Clock, now)...)
		hints = append(hints, meterSection(line, st, now)...)
		if h := st.Held; h.Count > 0 {
			line("held", "%d event(s) kept in memory since %s, not yet stored: %s", h.Count, clockTime(h.Oldest), h.Reason)
			switch {
			case h.SpillError != "":
				line("", "SPILL FAILED: %d of them on disk in %s: %s", h.OnDisk, h.SpillFile, h.SpillError)
				hints = append(hints, "events wait in memory for the outbox and could not all be written to the spill file (lost if the agent stops now): see the outbox line and the disk")
			case h.OnDisk < h.Count:
				line("", "%d of them on disk in %s so far", h.OnDisk, h.SpillFile)
				hints = append(hints, "events wait for the outbox (stored as soon as it accepts): see the outbox line")
			default:
				line("", "all on disk in %s: stored at the next start if the agent stops first", h.SpillFile)
				hints = append(hints, "events wait for the outbox (stored as soon as it accepts, kept on disk meanwhile): see the outbox line")
			}
			switch {
			case h.RuntimeSpillFile == "":
			case h.RuntimeSpillError != "":
				line("", "SPILL FAILED: %d of them in %s: %s", h.InRuntimeDir, h.RuntimeSpillFile, h.RuntimeSpillError)
			default:
				line("", "%d of them in %s: kept across a restart of the agent, not of the terminal", h.InRuntimeDir, h.RuntimeSpillFile)
			}
		}
	} else {
		line("daemon", "NOT RUNNING (no answer on %s); the outbox below is read from its file", r.Daemon.Socket)
		hints = append(hints, "start it with 'systemctl start taxi-agent' (logs: 'journalctl -u taxi-agent')")
		for _, h := range r.HeldOnDisk {
			switch {
			case h.Error != "":
				line("held", "spill file %s not readable: %s", h.SpillFile, h.Error)
			case h.Damaged > 0:
				line("held", "%d event(s) in %s, not yet in the outbox, and %d damaged line(s): the agent stores them when it starts", h.Events, h.SpillFile, h.Damaged)
			default:
				line("held", "%d event(s) in %s, not yet in the outbox: the agent stores them when it starts", h.Events, h.SpillFile)
			}
			hints = append(hints, "the agent stopped with held events; keep "+h.SpillFile+" and start the agent: it stores them first")
		}
	}

	if st := r.status; st != nil && !st.StorageStuckSince.IsZero() {
		line("storage", "STUCK since %s: an outbox commit has not returned for %s (outbox.commit_timeout %s)",
			clockTime(st.StorageStuckSince), age(now.Sub(st.StorageStuckSince)), time.Duration(st.CommitTimeout))
		line("outbox", "not read: it would wait behind the stuck commit")
		hints = append(hints, "storage is stuck (disk gone or not answering): the watchdog pings stopped, so systemd restarts the agent "+
			"within WatchdogSec; stored events stay in the file. Check the disk: 'journalctl -k', 'journalctl -u taxi-agent'")
	} else {
		hints = append(hints, outboxSection(line, r, now)...)
	}
	if st := r.status; st != nil {
		hints = append(hints, uploaderSection(line, st, now)...)
		networkSection(line, st.Connectivity, now)
		if st.Quarantined != "" && st.Quarantined != r.Outbox.Quarantined {
			line("", "at start: %s", st.Quarantined)
		}
	}
	o := r.Outbox
	if o.Dead > 0 {
		hints = append(hints, fmt.Sprintf("%d dead record(s): 'agent outbox ls -state dead -config %s', then retry or purge", o.Dead, configPath))
	}
	if o.Pending > 0 && time.Duration(o.OldestPendingAgeSeconds)*time.Second > time.Hour {
		hints = append(hints, "events have waited over an hour: check the network and the last error above")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printHints(w, hints)
}

// outboxSection writes the outbox's counts and file, and returns hints.
func outboxSection(line func(k, format string, args ...any), r statusReport, now time.Time) (hints []string) {
	o := r.Outbox
	oldest := ""
	if o.Pending > 0 {
		oldest = fmt.Sprintf(" (oldest received %s, %s ago)", clockTime(o.OldestPending), age(time.Duration(o.OldestPendingAgeSeconds)*time.Second))
	}
	line("outbox", "%d pending%s, %d dead, %d delivered", o.Pending, oldest, o.Dead, o.Delivered)
	file := fmt.Sprintf("%s, %s of %s", r.OutboxPath, size(o.FileSize), size(int64(o.MaxSize)))
	if o.Full {
		file += ", FULL: new events are refused and the meter re-sends them"
		hints = append(hints, "the outbox is full: delivery is stuck; see the last error")
	}
	line("", "%s", file)
	if o.CorruptFiles > 0 {
		line("", "%d corrupt file(s) moved aside next to it (%s.corrupt-*)", o.CorruptFiles, r.OutboxPath)
	}
	if o.Quarantined != "" {
		line("", "at start: %s", o.Quarantined)
	}
	last := "never"
	if !o.LastDelivered.IsZero() {
		last = clockTime(o.LastDelivered) + " (" + ago(o.LastDelivered, now) + ")"
	}
	line("delivered", "last %s", last)
	return hints
}

// printHints writes the hints under the sections, after a blank line.
func printHints(w io.Writer, hints []string) error {
	for i, h := range hints {
		if i == 0 {
			fmt.Fprintln(w)
		}
		if _, err := fmt.Fprintf(w, "! %s\n", h); err != nil {
			return err
		}
	}
	return nil
}

// size shows a byte count in KiB or MiB.
func size(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", (n+1023)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
