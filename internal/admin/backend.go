package admin

import (
	"context"
	"encoding/json"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/uploader"
	"taxi-agent/internal/version"
)

// Backend is what the server serves; the daemon implements it.
type Backend interface {
	// Status gathers the agent's state for `agent status`.
	Status(ctx context.Context) (Status, error)
	// Outbox is the daemon's open outbox.
	Outbox() OutboxStore
	// Requeued is called after a technician moved dead records back to
	// pending through the socket: the uploader should look at the head
	// now (a retried record may be older than the one it is waiting on)
	// rather than at its next scheduled attempt.
	Requeued()
}

// OutboxStore is the part of *outbox.Outbox the technician uses. The
// daemon's open outbox, a file the CLI opens itself, and the Client's view
// of the daemon's outbox all implement it.
type OutboxStore interface {
	// List returns up to limit records in state (all states for ""),
	// oldest first, after the id afterID, and the cursor for the next page
	// (0 when there is none).
	List(state outbox.State, afterID uint64, limit int) (recs []outbox.Record, nextAfter uint64, err error)
	// Get returns one record (outbox.ErrNotFound if there is none).
	Get(id uint64) (outbox.Record, error)
	// Retry moves a dead record back to pending (outbox.ErrNotDead).
	Retry(id uint64) error
	// RetryAllDead moves every dead record back to pending.
	RetryAllDead() (int, error)
	// Purge deletes a dead record (outbox.ErrNotDead).
	Purge(id uint64) error
	// PurgeAllDead deletes every dead record.
	PurgeAllDead() (int, error)
	// Export calls fn for every record, oldest first, without loading them
	// all.
	Export(fn func(outbox.Record) error) error
	// Stats counts records per state and reports the file's health.
	Stats() (outbox.Stats, error)
	// SetDriver stores the driver the meter is told about when it asks
	// who is driving (meter.identity = "terminal"); outbox.ErrBadDriver
	// if the meter's fields cannot carry it.
	SetDriver(d outbox.Driver) error
	// ClearDriver forgets the driver: the meter's requests are refused.
	ClearDriver() error
	// Driver returns the driver set, ok false if none.
	Driver() (d outbox.Driver, ok bool, err error)
}

var _ OutboxStore = (*outbox.Outbox)(nil)

// Status is the agent's state as `agent status` shows it.
type Status struct {
	Version   version.Info `json:"version"`
	PID       int          `json:"pid"`
	StartedAt time.Time    `json:"started_at"`
	Uptime    Duration     `json:"uptime_seconds"`

	Meter meter.LinkStats `json:"meter"`
	// Held counts events the outbox refused, kept in memory until it
	// accepts them.
	Held     HeldStatus      `json:"held_in_memory"`
	Outbox   outbox.Stats    `json:"outbox"`
	Uploader uploader.Status `json:"uploader"`
	Clock    ClockStatus     `json:"clock"`

	// Connectivity is the network watcher's report, passed through as is.
	Connectivity json.RawMessage `json:"connectivity,omitempty"`
	// Quarantined describes a corrupt outbox file moved aside at start, if
	// any.
	Quarantined string `json:"quarantined,omitempty"`
	// StorageStuckSince is when the outbox commit in flight began, set
	// once it has not returned within outbox.commit_timeout. The outbox
	// part is then not read (it would wait behind the commit).
	StorageStuckSince time.Time `json:"storage_stuck_since,omitzero"`
	// CommitTimeout is outbox.commit_timeout.
	CommitTimeout Duration `json:"commit_timeout_seconds,omitzero"`
}

// HeldStatus is the events kept in memory because the outbox refused
// them (sign-ins: the meter does not send them again). They are stored,
// in arrival order and ahead of any later event, as soon as it accepts.
type HeldStatus struct {
	Count  int       `json:"count"`
	Oldest time.Time `json:"oldest,omitzero"`  // arrival of the oldest
	Reason string    `json:"reason,omitempty"` // why the last store failed
	// SpillFile is the file held events are also written to, so that a
	// stop, kill or power cut does not lose them; OnDisk is how many of
	// them it holds, SpillError why the last write to it failed (the
	// events not on disk are then only in memory).
	SpillFile  string `json:"spill_file,omitempty"`
	OnDisk     int    `json:"on_disk"`
	SpillError string `json:"spill_error,omitempty"`
	// RuntimeSpillFile is the second copy, in the service's runtime
	// directory (tmpfs, kept across a restart of the agent, not of the
	// terminal): a disk that stopped answering cannot hold it back.
	// InRuntimeDir and RuntimeSpillError are as OnDisk and SpillError.
	RuntimeSpillFile  string `json:"runtime_spill_file,omitempty"`
	InRuntimeDir      int    `json:"in_runtime_dir,omitempty"`
	RuntimeSpillError string `json:"runtime_spill_error,omitempty"`
}

// ClockStatus says whether the wall clock can be trusted for event times.
type ClockStatus struct {
	Trusted      bool      `json:"trusted"`
	Now          time.Time `json:"now"`
	TrustedAfter time.Time `json:"trusted_after"` // a wall clock before this is wrong
	// Synchronized is whether the system reports the clock synchronised
	// (SyncSource says how that was read: "adjtimex", "timesyncd" or
	// "unknown"; SyncError why adjtimex could not be read).
	Synchronized     bool    `json:"synchronized"`
	SyncSource       string  `json:"sync_source"`
	SyncMaxErrorSecs float64 `json:"sync_max_error_seconds,omitempty"`
	SyncError        string  `json:"sync_error,omitempty"`
	// MeterDisagreement is the last time the unsynchronised wall clock was
	// more than an hour from the meter's and the meter's time was used.
	MeterDisagreement *stamp.Disagreement `json:"meter_disagreement,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as seconds.
type Duration time.Duration

// MarshalJSON writes whole seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(int64(time.Duration(d) / time.Second))
}

// UnmarshalJSON reads seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*d = Duration(s * float64(time.Second))
	return nil
}
