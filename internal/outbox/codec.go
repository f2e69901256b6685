package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Records are stored as one version byte followed by a compact binary body.
// Version 1 is a fixed sequence of fields, each a uvarint, a zig-zag varint,
// a length-prefixed string or a time; see appendRecordV1 for the order.
// A later version adds a new appendRecordVn and keeps decoding the old ones.
//
// Binary rather than JSON: a typical record is about a third of its JSON
// size (README.md), so more events fit before MaxSize and fewer leaves are
// rewritten per commit.
const recordV1 = 1

// errBadRecord is wrapped into ErrCorrupt by the callers that meet it.
var errBadRecord = errors.New("bad record encoding")

var stateCodes = map[State]byte{Pending: 1, Delivered: 2, Dead: 3}

func stateFromCode(c byte) (State, bool) {
	for s, code := range stateCodes {
		if code == c {
			return s, true
		}
	}
	return "", false
}

// encodeRecord returns r's stored form.
func encodeRecord(r *Record) []byte {
	b := make([]byte, 0, 256)
	b = append(b, recordV1)
	return appendRecordV1(b, r)
}

func appendRecordV1(b []byte, r *Record) []byte {
	b = binary.AppendUvarint(b, r.ID)
	b = append(b, stateCodes[r.State])
	b = appendString(b, r.Event.Type)
	b = appendString(b, r.Event.DriverLicense)
	b = appendString(b, r.Event.PlateNumber)
	b = binary.AppendVarint(b, r.Event.RegionID)
	b = appendString(b, r.Event.EventTime)
	b = appendString(b, r.Identity)
	b = appendTime(b, r.ReceivedAt)
	b = appendTime(b, r.MeterTime)
	b = appendString(b, r.BootID)
	b = binary.AppendVarint(b, int64(r.Monotonic))
	b = binary.AppendVarint(b, int64(r.Attempts))
	b = appendTime(b, r.NextAttempt)
	if e := r.LastError; e == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendTime(b, e.At)
		b = binary.AppendVarint(b, int64(e.Status))
		b = appendString(b, e.Code)
		b = appendString(b, e.Message)
		b = appendString(b, e.RequestID)
		b = appendString(b, e.Err)
	}
	b = appendTime(b, r.DeliveredAt)
	b = appendTime(b, r.DeadAt)
	b = appendString(b, r.DeadReason)
	b = binary.AppendVarint(b, int64(r.Requeued))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime stores a presence byte, then Unix seconds and nanoseconds, so
// that the zero time and 1970-01-01 (a board without RTC battery) differ.
// The location is not kept: times decode in UTC.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decodeRecord parses a stored record. It never panics on bad input.
func decodeRecord(b []byte) (Record, error) {
	if len(b) == 0 {
		return Record{}, fmt.Errorf("decode record: empty: %w", errBadRecord)
	}
	switch b[0] {
	case recordV1:
		d := decoder{b: b[1:]}
		r := d.recordV1()
		if d.err == nil && len(d.b) != 0 {
			d.fail("trailing bytes")
		}
		if d.err != nil {
			return Record{}, fmt.Errorf("decode record: %w", d.err)
		}
		return r, nil
	default:
		return Record{}, fmt.Errorf("decode record: version %d: %w", b[0], errBadRecord)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", what, errBadRecord)
	}
	d.b = nil
}

func (d *decoder) recordV1() Record {
	var r Record
	r.ID = d.uvarint()
	if s, ok := stateFromCode(d.byte()); ok {
		r.State = s
	} else {
		d.fail("state")
	}
	r.Event.Type = d.string()
	r.Event.DriverLicense = d.string()
	r.Event.PlateNumber = d.string()
	r.Event.RegionID = d.varint()
	r.Event.EventTime = d.string()
	r.Identity = d.string()
	r.ReceivedAt = d.time()
	r.MeterTime = d.time()
	r.BootID = d.string()
	r.Monotonic = time.Duration(d.varint())
	r.Attempts = d.int()
	r.NextAttempt = d.time()
	switch d.byte() {
	case 0:
	case 1:
		e := &AttemptError{}
		e.At = d.time()
		e.Status = d.int()
		e.Code = d.string()
		e.Message = d.string()
		e.RequestID = d.string()
		e.Err = d.string()
		r.LastError = e
	default:
		d.fail("last error flag")
	}
	r.DeliveredAt = d.time()
	r.DeadAt = d.time()
	r.DeadReason = d.string()
	r.Requeued = d.int()
	return r
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("int out of range")
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string past end")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec := d.varint()
		nsec := d.uvarint()
		if nsec >= uint64(time.Second) {
			d.fail("nanoseconds out of range")
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	default:
		d.fail("time flag")
		return time.Time{}
	}
}
