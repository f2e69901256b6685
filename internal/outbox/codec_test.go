package outbox

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// fillAll sets every field reachable from v to a distinct non-zero value,
// so that a field added to Record but not to the codec fails the round
// trip below.
func fillAll(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 11, 28, 10, 30, *n, *n*1000+7, time.UTC)))
		return
	case reflect.TypeFor[time.Duration]():
		v.SetInt(int64(*n) * int64(time.Millisecond))
		return
	case reflect.TypeFor[State]():
		v.Set(reflect.ValueOf(Dead))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)) + "粤")
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n) * 1000)
	case reflect.Uint64:
		v.SetUint(uint64(*n) << 40)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(t, v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			fillAll(t, v.Field(i), n)
		}
	default:
		t.Fatalf("fillAll: no rule for %s: teach the codec and this test the new field", v.Type())
	}
}

func TestCodecRoundTripsEveryField(t *testing.T) {
	var r Record
	n := 0
	fillAll(t, reflect.ValueOf(&r).Elem(), &n)
	got, err := decodeRecord(encodeRecord(&r))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
}

func TestCodecKeepsEpochApartFromZero(t *testing.T) {
	r := event(1)
	r.ID, r.State = 7, Pending
	r.ReceivedAt = time.Unix(0, 0).UTC() // a board without RTC battery
	r.MeterTime = time.Time{}
	got, err := decodeRecord(encodeRecord(&r))
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReceivedAt.Equal(time.Unix(0, 0)) || got.ReceivedAt.IsZero() {
		t.Errorf("ReceivedAt = %v, want the epoch", got.ReceivedAt)
	}
	if !got.MeterTime.IsZero() {
		t.Errorf("MeterTime = %v, want zero", got.MeterTime)
	}
}

func TestCodecRejectsBadInput(t *testing.T) {
	r := event(3)
	r.ID, r.State = 42, Pending
	r.LastError = &AttemptError{At: r.ReceivedAt, Status: 400, Code: "PARAM_ERROR", Message: "bad", RequestID: "req-1"}
	good := encodeRecord(&r)
	for i := range len(good) {
		if _, err := decodeRecord(good[:i]); !errors.Is(err, errBadRecord) {
			t.Errorf("prefix of %d bytes: error %v, want errBadRecord", i, err)
		}
	}
	cases := map[string][]byte{
		"unknown version": append([]byte{9}, good[1:]...),
		"trailing byte":   append(append([]byte{}, good...), 0),
		"bad state":       {recordV1, 1, 9},
		"huge string":     {recordV1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		if _, err := decodeRecord(b); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: error %v, want errBadRecord", name, err)
		}
	}
}

// TestCodecSize records how much smaller the binary form is than JSON.
func TestCodecSize(t *testing.T) {
	r := event(1)
	r.ID, r.State = 123456, Pending
	bin := len(encodeRecord(&r))
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("typical record: binary %d bytes, JSON %d bytes (%.0f%%)", bin, len(js)+1, 100*float64(bin)/float64(len(js)+1))
	if bin >= len(js) {
		t.Errorf("binary %d bytes is not smaller than JSON %d", bin, len(js))
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for i := range 4 {
		r := event(i)
		r.ID, r.State = uint64(i+1), Pending
		if i == 2 {
			r.State, r.LastError, r.DeadReason = Dead, &AttemptError{Status: 400}, "bad"
		}
		f.Add(encodeRecord(&r))
	}
	f.Add([]byte{})
	f.Add([]byte{recordV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(&r))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("not stable:\n%+v\n%+v", again, r)
		}
	})
}
