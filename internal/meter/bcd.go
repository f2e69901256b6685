package meter

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Zone is the meter's local time: the fixed zone UTC+8, whatever the
// system's zone is.
var Zone = time.FixedZone("UTC+8", 8*60*60)

// BCDTime is a meter time as sent on the wire: 6 BCD bytes YYYYMMDDhhmm in
// UTC+8. It is kept raw so that an invalid time still has an identity.
type BCDTime [6]byte

// BCDTimeOf encodes t, converted to UTC+8, truncated to the minute. Years
// outside 0…9999 are not representable and encode as zeros.
func BCDTimeOf(t time.Time) BCDTime {
	var b BCDTime
	t = t.In(Zone)
	if t.Year() < 0 || t.Year() > 9999 {
		return b
	}
	putBCD(b[0:2], uint64(t.Year()))
	putBCD(b[2:3], uint64(t.Month()))
	putBCD(b[3:4], uint64(t.Day()))
	putBCD(b[4:5], uint64(t.Hour()))
	putBCD(b[5:6], uint64(t.Minute()))
	return b
}

// Time decodes b in UTC+8. It returns ErrBadBCD for a nibble above 9 and
// ErrBadTime for a date or time that does not exist.
func (b BCDTime) Time() (time.Time, error) {
	return bcdTime(b[:])
}

// String returns the raw bytes as hex, "202611281030" for a valid time.
func (b BCDTime) String() string { return hex.EncodeToString(b[:]) }

// IsZero reports whether all bytes are zero (a meter that left it unset).
func (b BCDTime) IsZero() bool { return b == BCDTime{} }

// bcdTime decodes YYYYMMDDhhmm[ss] (6 or 7 bytes).
func bcdTime(b []byte) (time.Time, error) {
	var v [6]int
	widths := [6]int{2, 1, 1, 1, 1, 1}
	p := 0
	for i := range len(b) - 1 {
		n, err := bcdUint(b[p : p+widths[i]])
		if err != nil {
			return time.Time{}, fmt.Errorf("decode time %x: %w", b, err)
		}
		v[i] = int(n)
		p += widths[i]
	}
	year, month, day, hour, minute, sec := v[0], v[1], v[2], v[3], v[4], v[5]
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 ||
		day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, fmt.Errorf("decode time %x: %w", b, ErrBadTime)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, Zone), nil
}

// appendBCDTime7 appends t in UTC+8 as 7 BCD bytes YYYYMMDDhhmmss.
func appendBCDTime7(dst []byte, t time.Time) []byte {
	b := BCDTimeOf(t)
	var s [1]byte
	putBCD(s[:], uint64(t.In(Zone).Second()))
	return append(append(dst, b[:]...), s[0])
}

// bcdUint decodes big-endian packed BCD.
func bcdUint(b []byte) (uint64, error) {
	var v uint64
	for _, c := range b {
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return 0, ErrBadBCD
		}
		v = v*100 + uint64(hi)*10 + uint64(lo)
	}
	return v, nil
}

// putBCD writes v as packed BCD filling b; higher digits that do not fit
// are lost.
func putBCD(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		b[i] = byte(hi<<4 | lo)
	}
}

// appendBCD appends v as n bytes of packed BCD.
func appendBCD(dst []byte, v uint64, n int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	putBCD(dst[start:], v)
	return dst
}
