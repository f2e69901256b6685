package badinput

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/test/harness"
)

// corruption damages an outbox file's bytes.
type corruption struct {
	name string
	// damage returns the damaged file; strict means it must be
	// quarantined (no valid outbox can be read from it).
	damage func(good []byte, rng *rand.Rand) (bad []byte)
	strict bool
}

const pageSize = 4096

func corruptions() []corruption {
	cs := []corruption{
		{name: "garbage", strict: true, damage: func(good []byte, rng *rand.Rand) []byte {
			return randomBytes(rng, len(good))
		}},
		{name: "both meta pages garbage", strict: true, damage: func(good []byte, rng *rand.Rand) []byte {
			bad := bytes.Clone(good)
			copy(bad, randomBytes(rng, 2*pageSize))
			return bad
		}},
		{name: "a text file", strict: true, damage: func([]byte, *rand.Rand) []byte {
			return []byte("[vehicle]\nplate_number = \"粤B12345\"\n")
		}},
	}
	for i := range 4 {
		cs = append(cs, corruption{name: "truncated at a random offset " + string(rune('A'+i)), damage: func(good []byte, rng *rand.Rand) []byte {
			return bytes.Clone(good[:1+rng.IntN(len(good)-1)])
		}})
	}
	for i := range 3 {
		cs = append(cs, corruption{name: "a random page garbage " + string(rune('A'+i)), damage: func(good []byte, rng *rand.Rand) []byte {
			bad := bytes.Clone(good)
			p := 2 + rng.IntN(len(good)/pageSize-2)
			copy(bad[p*pageSize:], randomBytes(rng, pageSize))
			return bad
		}})
	}
	return cs
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestCorruptOutbox damages a good outbox in several ways and starts the
// agent on each: it must come up (never crash-loop), move a damaged file
// aside untouched (or, when the damage left a valid outbox, keep every
// record), say so in its log, and go on storing and delivering events.
func TestCorruptOutbox(t *testing.T) {
	rig := harness.NewRig(t, agentBin, harness.RigOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var led harness.Ledger
	path := rig.Config.Outbox.Path

	// A good outbox: three shifts, delivered.
	a := rig.Start()
	day := time.Now()
	for n := 1; n <= 3; n++ {
		s := harness.ShiftOf(n, day)
		mustAck(t)(led.SignIn(ctx, rig.Meter, s))
		mustAck(t)(led.SignOut(ctx, rig.Meter, s, "", false))
	}
	if err := rig.WaitDelivered(ctx, led.Acked()); err != nil {
		t.Fatal(err)
	}
	rig.Stop(a)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	goodRecs := rig.Records()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, good outbox %d bytes, %d records", seed, len(good), len(goodRecs))
	rng := rand.New(rand.NewPCG(seed, 7))
	driver := 100
	for _, c := range corruptions() {
		bad := c.damage(good, rng)
		removeQuarantined(t, path)
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		a := rig.Start()

		// It keeps working: a new shift is stored and delivered.
		driver++
		var after harness.Ledger
		s := harness.ShiftOf(driver, time.Now())
		mustAck(t)(after.SignIn(ctx, rig.Meter, s))
		if err := rig.WaitDelivered(ctx, after.Acked()); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rig.Stop(a)

		moved := quarantined(t, path)
		recs := rig.Records()
		switch {
		case len(moved) > 1:
			t.Errorf("%s: %d files moved aside, want one: %q", c.name, len(moved), moved)
		case len(moved) == 1:
			kept, err := os.ReadFile(moved[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kept, bad) {
				t.Errorf("%s: the file moved aside is not the damaged file as it was", c.name)
			}
			if !strings.Contains(a.Output(), "moved aside") {
				t.Errorf("%s: the agent did not log that it moved the outbox aside", c.name)
			}
			if len(recs) != 1 || harness.RecordKey(recs[0]) != after.Acked()[0].Key() || recs[0].State != outbox.Delivered {
				t.Errorf("%s: fresh outbox holds %+v, want the one new event, delivered", c.name, recs)
			}
			t.Logf("%s (%d bytes): moved aside as %s", c.name, len(bad), filepath.Base(moved[0]))
		case c.strict:
			t.Errorf("%s: not moved aside", c.name)
		default:
			// The damage missed everything that matters: every record must
			// still be there, unchanged, with the new one after them.
			if len(recs) != len(goodRecs)+1 || !reflect.DeepEqual(recs[:len(goodRecs)], goodRecs) {
				t.Errorf("%s (%d of %d bytes kept): not moved aside, but the records changed:\n%+v\nwant\n%+v",
					c.name, len(bad), len(good), recs, goodRecs)
			}
			t.Logf("%s (%d bytes): harmless, every record intact", c.name, len(bad))
		}
	}
}

func removeQuarantined(t *testing.T, path string) {
	t.Helper()
	for _, f := range quarantined(t, path) {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

func quarantined(t *testing.T, path string) []string {
	t.Helper()
	fs, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func mustAck(t *testing.T) func(harness.Acked, error) {
	return func(_ harness.Acked, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}
