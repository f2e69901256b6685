package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/redact"
)

// SpillSuffix is added to outbox.path to name the spill file: the held
// events, on disk, while the outbox refuses them. The format is in
// docs/meter-protocol.md, "Held events on disk".
const SpillSuffix = ".held"

// spillRetry is how soon a spill write that failed is tried again.
const spillRetry = 2 * time.Second

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// spillLine is one held event as a spill file line carries it (after the
// checksum).
type spillLine struct {
	Record     outbox.Record `json:"record"`
	DeadReason string        `json:"dead_reason,omitempty"`
	Arrived    time.Time     `json:"arrived"`
}

// encodeSpillLine returns "<crc32c of json, 8 hex digits> <json>\n".
func encodeSpillLine(h heldEvent) ([]byte, error) {
	js, err := json.Marshal(spillLine{Record: h.rec, DeadReason: h.deadReason, Arrived: h.arrived})
	if err != nil {
		return nil, err
	}
	out := fmt.Appendf(nil, "%08x ", crc32.Checksum(js, crcTable))
	out = append(out, js...)
	return append(out, '\n'), nil
}

// spillDamage is a line of a spill file that could not be read back.
type spillDamage struct {
	Line    int    // 1-based
	Bytes   int    // length, newline excluded
	Why     string // "torn (no end of line)", "checksum mismatch", …
	Type    string // event type, if it could still be made out
	Licence string // 从业资格证号, masked, if it could still be made out
}

var (
	reType    = regexp.MustCompile(`"event_type":"([A-Z_]{1,16})"`)
	reLicence = regexp.MustCompile(`"driver_license":"([^"]{0,40})"`)
)

// decodeSpill reads a spill file's contents: the events of its whole,
// intact lines in order, and what was wrong with the others. A last line
// without its newline (a write cut short by a power loss) is torn and
// skipped, never read as an event.
func decodeSpill(data []byte) (events []heldEvent, damaged []spillDamage) {
	for n := 1; len(data) > 0; n++ {
		line, rest, whole := bytes.Cut(data, []byte{'\n'})
		data = rest
		why := ""
		var sl spillLine
		switch {
		case !whole:
			why = "torn (no end of line)"
		case len(line) < 10 || line[8] != ' ':
			why = "not a spill line"
		default:
			sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
			js := line[9:]
			switch {
			case err != nil:
				why = "not a spill line"
			case uint32(sum) != crc32.Checksum(js, crcTable):
				why = "checksum mismatch"
			default:
				if err := json.Unmarshal(js, &sl); err != nil {
					why = "unreadable: " + err.Error()
				}
			}
		}
		if why == "" {
			events = append(events, heldEvent{rec: sl.Record, deadReason: sl.DeadReason, arrived: sl.Arrived})
			continue
		}
		d := spillDamage{Line: n, Bytes: len(line), Why: why}
		if m := reType.FindSubmatch(line); m != nil {
			d.Type = string(m[1])
		}
		if m := reLicence.FindSubmatch(line); m != nil {
			d.Licence = redact.Licence(string(m[1]))
		}
		damaged = append(damaged, d)
	}
	return events, damaged
}

// spill keeps the held events on disk. Its own goroutine does the file
// work, never the meter link: the held queue only hands events over
// (add) and says when it has stored them all (emptied).
type spill struct {
	path string
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex // what the held queue handed over, not yet on disk
	pending []heldEvent
	emptied bool // remove the file before writing pending
	status  spillStatus

	io      sync.Mutex  // serialises the file work
	mirror  []heldEvent // what the file holds (a stored event may linger until the file is removed)
	rewrite bool        // the file may end in a partial line: rewrite it whole
	blocked error       // the file could not be read at start: never touch it
}

// spillStatus is what `status` shows of the spill file.
type spillStatus struct {
	written uint64 // highest seq on disk
	err     error  // last write failure, nil once a write succeeds
}

func newSpill(path string, log *slog.Logger) *spill {
	return &spill{path: path, log: log, kick: make(chan struct{}, 1)}
}

// add hands held events over to be written.
func (s *spill) add(h heldEvent) {
	s.mu.Lock()
	s.pending = append(s.pending, h)
	s.mu.Unlock()
	s.wake()
}

// adopt makes the file hold events (numbered by the held queue), in
// place of what it held: the events several spill files held, merged.
func (s *spill) adopt(events []heldEvent) {
	s.io.Lock()
	defer s.io.Unlock()
	if s.blocked != nil {
		return
	}
	s.mirror, s.rewrite = slices.Clone(events), true
	s.mu.Lock()
	s.status.written = 0
	s.mu.Unlock()
	s.wake()
}

// emptied says every held event handed over so far is stored.
func (s *spill) markEmptied() {
	s.mu.Lock()
	s.pending, s.emptied = nil, true
	s.mu.Unlock()
	s.wake()
}

func (s *spill) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *spill) state() spillStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// load reads the spill file left by an earlier run and numbers its
// events from 1 (seq). Damaged lines are
// logged, each with what could be made out of it; the file is then
// rewritten with the intact lines and the damaged original kept beside it
// (<spill>.damaged-<unix time>) for the technician.
func (s *spill) load() ([]heldEvent, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		// Its events cannot be stored, but they must not be overwritten
		// either: the agent runs without a spill file (held events stay in
		// memory, status shows why) and reads it at the next start.
		s.blocked = fmt.Errorf("spill file could not be read at start, left untouched: %w", err)
		s.status.err = s.blocked
		s.log.Error("spill file not readable; held events it may carry are left in it, and new ones are kept in memory only until the agent restarts",
			"spill_file", s.path, "err", err)
		return nil, nil
	}
	events, damaged := decodeSpill(data)
	for i := range events {
		events[i].seq = uint64(i + 1)
	}
	s.io.Lock()
	defer s.io.Unlock()
	s.mirror = events
	s.mu.Lock()
	s.status.written = uint64(len(events))
	s.mu.Unlock()
	for _, d := range damaged {
		s.log.Error("spill file line damaged; the held event it carried is lost",
			"spill_file", s.path, "line", d.Line, "bytes", d.Bytes, "why", d.Why,
			"event_type", d.Type, "driver_license", d.Licence)
	}
	if len(damaged) > 0 {
		aside := fmt.Sprintf("%s.damaged-%d", s.path, time.Now().Unix())
		if err := os.Link(s.path, aside); err != nil {
			s.log.Error("could not keep the damaged spill file", "spill_file", s.path, "err", err)
			aside = ""
		}
		if err := s.writeWhole(); err != nil {
			s.log.Error("could not rewrite the damaged spill file; retried", "spill_file", s.path, "err", err)
			s.rewrite = true
		}
		s.log.Warn("spill file recovered: intact lines kept", "spill_file", s.path, "recovered", len(events),
			"damaged", len(damaged), "damaged_copy", aside)
	}
	return events, nil
}

// run writes what the held queue hands over until stop is closed,
// retrying a failed write every spillRetry.
func (s *spill) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		if s.sync() != nil {
			t.Reset(spillRetry)
		}
	}
}

// sync brings the file in line with what was handed over: removed when
// everything was stored, then the pending events appended and fsync'd.
func (s *spill) sync() error {
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	pending, emptied := s.pending, s.emptied
	s.pending, s.emptied = nil, false
	s.mu.Unlock()

	var err error
	if s.blocked != nil {
		return s.blocked
	}
	if emptied {
		s.mirror = nil
		err = s.remove()
		s.rewrite = err != nil
	}
	if len(pending) > 0 {
		s.mirror = append(s.mirror, pending...)
		if s.rewrite || err != nil {
			err = s.writeWhole()
		} else if err = s.appendLines(pending); err != nil {
			err = errors.Join(err, s.writeWhole())
		}
	} else if err == nil && s.rewrite {
		err = s.writeWhole()
	}
	s.rewrite = err != nil

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && s.status.err == nil {
		s.log.Error("could not write held events to the spill file: they are only in memory and lost if the agent stops; retried",
			"spill_file", s.path, "err", err)
	}
	if err == nil && s.status.err != nil {
		s.log.Warn("spill file written again: held events are on disk", "spill_file", s.path)
	}
	if err == nil && len(s.mirror) > 0 {
		s.status.written = s.mirror[len(s.mirror)-1].seq
	}
	s.status.err = err
	return err
}

// appendLines appends events to the file and fsyncs it (and, if it
// created the file, its directory).
func (s *spill) appendLines(events []heldEvent) error {
	var buf []byte
	for _, h := range events {
		b, err := encodeSpillLine(h)
		if err != nil {
			return err
		}
		buf = append(buf, b...)
	}
	_, statErr := os.Stat(s.path)
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(buf)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil && statErr != nil {
		err = syncDir(s.path)
	}
	return err
}

// writeWhole replaces the file with the mirror, atomically: a temporary
// file, fsync'd, renamed over it, and the directory fsync'd.
func (s *spill) writeWhole() error {
	if len(s.mirror) == 0 {
		return s.remove()
	}
	var buf []byte
	for _, h := range s.mirror {
		b, err := encodeSpillLine(h)
		if err != nil {
			return err
		}
		buf = append(buf, b...)
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(buf)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	return syncDir(s.path)
}

// remove deletes the file, durably.
func (s *spill) remove() error {
	err := os.Remove(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(s.path)
}

// syncDir fsyncs the directory holding path, so that a created, renamed
// or removed entry survives a power cut.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// ReadSpill returns the records of the events a spill file (outbox.path
// + SpillSuffix, or its copy in the runtime directory) holds, in order,
// and how many of its lines are damaged, for `agent status` while the
// agent is stopped; a missing file holds none. It changes nothing.
func ReadSpill(path string) (records []outbox.Record, damaged int, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	ev, dmg := decodeSpill(data)
	for _, h := range ev {
		records = append(records, h.rec)
	}
	return records, len(dmg), nil
}
