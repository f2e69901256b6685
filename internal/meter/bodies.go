package meter

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Field sizes shared by several bodies.
const (
	companyLen = 16 // 经营许可证号
	driverLen  = 19 // 从业资格证号
	plateLen   = 6  // 车牌号, without the province character
)

// Body sizes. Longer bodies are accepted and their extra bytes ignored.
const (
	SignInSize          = 52
	SignOutSize         = 90
	HeartbeatSize       = 36
	HeartbeatAnswerSize = 10
	RequestAnswerSize   = 57
	StatusQuerySize     = 7
	StatusReplySize     = 55
)

// SignIn is the body of 0x00E1 (开机成功), 52 bytes.
type SignIn struct {
	CompanyLicence string  // 经营许可证号
	DriverLicence  string  // 从业资格证号
	Plate          string  // 车牌号, 6 ASCII characters
	Time           BCDTime // 开机时间
	TotalTrips     uint32  // 总营运次数
	Result         byte    // 操作结果
}

// ParseSignIn decodes a 0x00E1 body. Only a short body is an error; an
// invalid time is reported by Time.Time.
func ParseSignIn(data []byte) (SignIn, error) {
	if len(data) < SignInSize {
		return SignIn{}, fmt.Errorf("parse sign-in body of %d bytes: %w", len(data), ErrShortBody)
	}
	s := SignIn{
		CompanyLicence: trimASCII(data[0:16]),
		DriverLicence:  trimASCII(data[16:35]),
		Plate:          trimASCII(data[35:41]),
		TotalTrips:     binary.BigEndian.Uint32(data[47:51]),
		Result:         data[51],
	}
	copy(s.Time[:], data[41:47])
	return s, nil
}

// Append appends the 52-byte wire body.
func (s SignIn) Append(dst []byte) []byte {
	dst = appendASCII(dst, s.CompanyLicence, companyLen)
	dst = appendASCII(dst, s.DriverLicence, driverLen)
	dst = appendASCII(dst, s.Plate, plateLen)
	dst = append(dst, s.Time[:]...)
	dst = binary.BigEndian.AppendUint32(dst, s.TotalTrips)
	return append(dst, s.Result)
}

// SignOut is the body of 0x00E4 (关机成功) and 0x00F1 (its later re-send),
// 90 bytes, 91 on meters that append the sign-out mode. BCD quantities are
// decoded to their decimal value in the unit the meter counts in.
type SignOut struct {
	CompanyLicence string  // 经营许可证号
	DriverLicence  string  // 从业资格证号; some meters leave it empty
	Plate          string  // 车牌号
	KValue         uint32  // 计价器K值 (pulses per km)
	ShiftStart     BCDTime // 当班开机时间
	ShiftEnd       BCDTime // 当班关机时间: the sign-out time
	Mileage        uint32  // 当班里程, 0.1 km
	ServiceMileage uint32  // 当班营运里程, 0.1 km
	Trips          uint32  // 车次
	WaitingTime    uint32  // 计时时间, BCD digits as sent (hhmmss on most meters)
	Fare           uint32  // 总计金额, 0.1 yuan
	CardFare       uint32  // 卡收金额, 0.1 yuan
	CardTrips      uint32  // 卡次
	EmptyMileage   uint32  // 班间里程, 0.1 km
	TotalMileage   uint32  // 总计里程, 0.1 km
	TotalService   uint32  // 总营运里程, 0.1 km
	UnitPrice      uint32  // 单价, 0.01 yuan
	TotalTrips     uint32  // 总营运次数
	HasMode        bool    // the meter appended 签退方式
	Mode           byte    // 签退方式: 0 normal, 1 forced
	// FieldErr is the first invalid BCD quantity, if any. The event is
	// still good: the quantities are informative, the identity is not
	// made of them.
	FieldErr error
}

// signOutBCD lists the BCD quantities of a sign-out body in wire order,
// after the two times.
var signOutBCD = [...]struct {
	name string
	size int
}{
	{"mileage", 3}, {"service mileage", 3}, {"trips", 2}, {"waiting time", 3},
	{"fare", 3}, {"card fare", 3}, {"card trips", 2}, {"empty mileage", 2},
	{"total mileage", 4}, {"total service mileage", 4}, {"unit price", 2},
}

func (s *SignOut) quantities() [len(signOutBCD)]*uint32 {
	return [...]*uint32{&s.Mileage, &s.ServiceMileage, &s.Trips, &s.WaitingTime, &s.Fare,
		&s.CardFare, &s.CardTrips, &s.EmptyMileage, &s.TotalMileage, &s.TotalService, &s.UnitPrice}
}

// ParseSignOut decodes a 0x00E4 or 0x00F1 body. Only a short body is an
// error; invalid quantities are reported in FieldErr and an invalid time
// by ShiftEnd.Time.
func ParseSignOut(data []byte) (SignOut, error) {
	if len(data) < SignOutSize {
		return SignOut{}, fmt.Errorf("parse sign-out body of %d bytes: %w", len(data), ErrShortBody)
	}
	s := SignOut{
		CompanyLicence: trimASCII(data[0:16]),
		DriverLicence:  trimASCII(data[16:35]),
		Plate:          trimASCII(data[35:41]),
		TotalTrips:     binary.BigEndian.Uint32(data[86:90]),
	}
	k, err := bcdUint(data[41:43])
	if err != nil {
		s.FieldErr = fmt.Errorf("decode k value %x: %w", data[41:43], err)
	}
	s.KValue = uint32(k)
	copy(s.ShiftStart[:], data[43:49])
	copy(s.ShiftEnd[:], data[49:55])
	p := 55
	for i, q := range s.quantities() {
		f := signOutBCD[i]
		v, err := bcdUint(data[p : p+f.size])
		if err != nil && s.FieldErr == nil {
			s.FieldErr = fmt.Errorf("decode %s %x: %w", f.name, data[p:p+f.size], err)
		}
		*q = uint32(v)
		p += f.size
	}
	if len(data) > SignOutSize {
		s.HasMode, s.Mode = true, data[SignOutSize]
	}
	return s, nil
}

// Append appends the 90-byte wire body, 91 with HasMode.
func (s SignOut) Append(dst []byte) []byte {
	dst = appendASCII(dst, s.CompanyLicence, companyLen)
	dst = appendASCII(dst, s.DriverLicence, driverLen)
	dst = appendASCII(dst, s.Plate, plateLen)
	dst = appendBCD(dst, uint64(s.KValue), 2)
	dst = append(dst, s.ShiftStart[:]...)
	dst = append(dst, s.ShiftEnd[:]...)
	for i, q := range s.quantities() {
		dst = appendBCD(dst, uint64(*q), signOutBCD[i].size)
	}
	dst = binary.BigEndian.AppendUint32(dst, s.TotalTrips)
	if s.HasMode {
		dst = append(dst, s.Mode)
	}
	return dst
}

// ParseResult decodes a 1-byte result reply (0x90 or 0xFF).
func ParseResult(data []byte) (byte, error) {
	if len(data) < 1 {
		return 0, fmt.Errorf("parse result: %w", ErrShortBody)
	}
	return data[0], nil
}

// trimASCII returns a fixed-width string field without its padding of
// 0x00 and spaces.
func trimASCII(b []byte) string {
	return strings.Trim(string(b), "\x00 ")
}

// appendASCII appends s right-padded with 0x00 to n bytes, cut at n.
func appendASCII(dst []byte, s string, n int) []byte {
	if len(s) > n {
		s = s[:n]
	}
	dst = append(dst, s...)
	for range n - len(s) {
		dst = append(dst, 0)
	}
	return dst
}
