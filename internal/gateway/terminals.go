package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// TerminalsFile is the file in state.dir where the gateway keeps the
// terminals it has seen, for `taxi-gateway status`.
const TerminalsFile = "terminals.json"

// Seen is what the gateway knows of one terminal certificate.
type Seen struct {
	Serial      string    `json:"serial"`
	Plate       string    `json:"plate"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	LastPunch   time.Time `json:"last_punch,omitzero"` // the last punch relayed or answered from memory
	LastOutcome string    `json:"last_outcome,omitempty"`
	Punches     uint64    `json:"punches"`
}

// terminals records the terminals seen, by certificate serial, and
// persists them to state.dir.
type terminals struct {
	path string

	mu    sync.Mutex
	seen  map[string]*Seen
	dirty bool
}

func loadTerminals(dir string) (*terminals, error) {
	t := &terminals{path: filepath.Join(dir, TerminalsFile), seen: map[string]*Seen{}}
	list, err := ReadTerminals(dir)
	if err != nil {
		return nil, err
	}
	for i := range list {
		t.seen[list[i].Serial] = &list[i]
	}
	return t, nil
}

// note records a punch of the terminal with serial and plate.
func (t *terminals) note(serial, plate, outcome string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.seen[serial]
	if s == nil {
		s = &Seen{Serial: serial, Plate: plate, FirstSeen: at}
		t.seen[serial] = s
	}
	s.LastSeen = at
	if outcome == OutcomeDelivered || outcome == OutcomeDuplicate || outcome == OutcomeRejected {
		s.LastPunch = at
	}
	s.LastOutcome = outcome
	s.Punches++
	t.dirty = true
}

// save writes the file if anything changed, atomically.
func (t *terminals) save() error {
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	list := make([]Seen, 0, len(t.seen))
	for _, s := range t.seen {
		list = append(list, *s)
	}
	t.dirty = false
	t.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Plate < list[j].Plate })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("save terminals: %w", err)
	}
	tmp := t.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("save terminals: %w", err)
	}
	if err := os.Rename(tmp, t.path); err != nil {
		return fmt.Errorf("save terminals: %w", err)
	}
	return nil
}

// ReadTerminals reads the terminals a gateway with state.dir = dir has
// seen; none when it has not written the file yet.
func ReadTerminals(dir string) ([]Seen, error) {
	data, err := os.ReadFile(filepath.Join(dir, TerminalsFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read terminals: %w", err)
	}
	var list []Seen
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("read terminals %s: %w", filepath.Join(dir, TerminalsFile), err)
	}
	return list, nil
}
