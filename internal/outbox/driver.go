package outbox

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyDriver holds the driver the terminal set, in the meta bucket.
var keyDriver = []byte("driver")

// Field limits of a Driver: the widths of the meter protocol's fields.
const (
	maxDriverLicence = 19 // 从业资格证号
	maxCompany       = 16 // 经营许可证号
)

// Driver is who the terminal's card reader says is driving, for meters
// that take the driver's identity from the terminal. It is kept in the
// outbox file so that it survives a restart.
type Driver struct {
	Licence string    `json:"driver_license"`            // 从业资格证号, up to 19 ASCII characters
	Company string    `json:"company_licence,omitempty"` // 经营许可证号, up to 16 ASCII characters
	SetAt   time.Time `json:"set_at"`
}

// Check reports what is wrong with d, wrapping ErrBadDriver: a missing
// licence, or a field that is not printable ASCII or too long for the
// meter's field.
func (d Driver) Check() error {
	if d.Licence == "" {
		return fmt.Errorf("driver licence: missing: %w", ErrBadDriver)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"driver licence", d.Licence, maxDriverLicence}, {"company licence", d.Company, maxCompany}} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s %q: longer than the meter's %d characters: %w", f.name, f.v, f.max, ErrBadDriver)
		}
		for _, c := range []byte(f.v) {
			if c <= ' ' || c > '~' {
				return fmt.Errorf("%s %q: only printable ASCII without spaces fits the meter's field: %w", f.name, f.v, ErrBadDriver)
			}
		}
	}
	return nil
}

// SetDriver stores d as the current driver, durably, replacing any
// other. SetAt is set to now when zero.
func (o *Outbox) SetDriver(d Driver) error {
	if err := d.Check(); err != nil {
		return fmt.Errorf("set driver: %w", err)
	}
	if d.SetAt.IsZero() {
		d.SetAt = o.opts.Now()
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("set driver: %w", err)
	}
	return o.updateMeta("set driver", func(meta *bolt.Bucket) error { return meta.Put(keyDriver, b) })
}

// ClearDriver forgets the current driver: the meter's next request is
// refused until one is set.
func (o *Outbox) ClearDriver() error {
	return o.updateMeta("clear driver", func(meta *bolt.Bucket) error { return meta.Delete(keyDriver) })
}

// Driver returns the current driver; ok is false when none is set.
func (o *Outbox) Driver() (d Driver, ok bool, err error) {
	if err := o.readable(); err != nil {
		return Driver{}, false, fmt.Errorf("read driver: %w", err)
	}
	err = o.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return ErrCorrupt
		}
		v := meta.Get(keyDriver)
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode driver: %w: %w", ErrCorrupt, err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return Driver{}, false, fmt.Errorf("read driver: %w", err)
	}
	return d, ok, nil
}

func (o *Outbox) updateMeta(op string, fn func(meta *bolt.Bucket) error) error {
	if err := o.writable(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err := o.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return ErrCorrupt
		}
		return fn(meta)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
