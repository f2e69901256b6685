package meter

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// MeterState is the state byte of the meter's heartbeat.
type MeterState byte

// Bits of MeterState.
const (
	StateHired     MeterState = 1 << 0 // 重车: a passenger is aboard
	StateSignedIn  MeterState = 1 << 1 // a driver is signed in
	StateForcedOn  MeterState = 1 << 2 // forced sign-in (强制开机)
	StateForcedOff MeterState = 1 << 3 // forced sign-out (强制关机)
)

// Hired reports bit 0.
func (s MeterState) Hired() bool { return s&StateHired != 0 }

// SignedIn reports bit 1.
func (s MeterState) SignedIn() bool { return s&StateSignedIn != 0 }

// ForcedOn reports bit 2.
func (s MeterState) ForcedOn() bool { return s&StateForcedOn != 0 }

// ForcedOff reports bit 3.
func (s MeterState) ForcedOff() bool { return s&StateForcedOff != 0 }

// String lists the set bits, e.g. "hired|signed_in", or "idle".
func (s MeterState) String() string {
	var parts []string
	for _, b := range [...]struct {
		bit  MeterState
		name string
	}{{StateHired, "hired"}, {StateSignedIn, "signed_in"}, {StateForcedOn, "forced_on"}, {StateForcedOff, "forced_off"}} {
		if s&b.bit != 0 {
			parts = append(parts, b.name)
		}
	}
	if rest := s &^ 0x0F; rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02X", byte(rest)))
	}
	if len(parts) == 0 {
		return "idle"
	}
	return strings.Join(parts, "|")
}

// Heartbeat is the body of the meter's 0x00E9, 36 bytes.
type Heartbeat struct {
	State          MeterState
	CompanyLicence string // 经营许可证号
	DriverLicence  string // 从业资格证号
}

// ParseHeartbeat decodes a 0x00E9 body from the meter.
func ParseHeartbeat(data []byte) (Heartbeat, error) {
	if len(data) < HeartbeatSize {
		return Heartbeat{}, fmt.Errorf("parse heartbeat body of %d bytes: %w", len(data), ErrShortBody)
	}
	return Heartbeat{
		State:          MeterState(data[0]),
		CompanyLicence: trimASCII(data[1:17]),
		DriverLicence:  trimASCII(data[17:36]),
	}, nil
}

// Append appends the 36-byte wire body.
func (h Heartbeat) Append(dst []byte) []byte {
	dst = append(dst, byte(h.State))
	dst = appendASCII(dst, h.CompanyLicence, companyLen)
	return appendASCII(dst, h.DriverLicence, driverLen)
}

// HeartbeatAnswer is the agent's 0x00E9 answer: 10 bytes, or 11 where the
// meter counts the count limit in 2 bytes (Dialect.CountLimitWidth). The
// zero value (no limits, status 0, standard width) is what the agent sends.
type HeartbeatAnswer struct {
	ISUStatus  uint16
	TimeLimit  [5]byte // BCD; zeros = none
	CountLimit uint16  // zero = none; one byte on the wire unless CountLimitWidth is 2
	// CountLimitWidth is 1 (0 means 1) or 2.
	CountLimitWidth int
	Reserved        uint16
}

// ParseHeartbeatAnswer decodes a 0x00E9 answer; an 11-byte body has a
// 2-byte count limit.
func ParseHeartbeatAnswer(data []byte) (HeartbeatAnswer, error) {
	if len(data) < HeartbeatAnswerSize {
		return HeartbeatAnswer{}, fmt.Errorf("parse heartbeat answer of %d bytes: %w", len(data), ErrShortBody)
	}
	a := HeartbeatAnswer{ISUStatus: binary.BigEndian.Uint16(data[0:2]), CountLimitWidth: 1}
	copy(a.TimeLimit[:], data[2:7])
	rest := data[7:]
	if len(data) >= HeartbeatAnswerSize+1 {
		a.CountLimitWidth, a.CountLimit, rest = 2, binary.BigEndian.Uint16(rest[0:2]), rest[2:]
	} else {
		a.CountLimit, rest = uint16(rest[0]), rest[1:]
	}
	a.Reserved = binary.BigEndian.Uint16(rest[0:2])
	return a, nil
}

// Append appends the 10-byte wire body, 11 with a 2-byte count limit.
func (a HeartbeatAnswer) Append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, a.ISUStatus)
	dst = append(dst, a.TimeLimit[:]...)
	if a.CountLimitWidth == 2 {
		dst = binary.BigEndian.AppendUint16(dst, a.CountLimit)
	} else {
		dst = append(dst, byte(a.CountLimit))
	}
	return binary.BigEndian.AppendUint16(dst, a.Reserved)
}

// RequestAnswer is the agent's answer to a sign-in or sign-out request
// (0x00E0, 0x00E3), 57 bytes. Fields the agent does not know stay empty
// and are sent zero-filled.
type RequestAnswer struct {
	CompanyLicence string  // 经营许可证号
	DriverLicence  string  // 从业资格证号
	Plate          string  // 车牌号
	SwipeTime      BCDTime // 刷卡时间: now
	ISUStatus      uint16
	TimeLimit      [5]byte // BCD; zeros = none
	CountLimit     [2]byte // zeros = none
	Result         byte    // ResultOK
}

// ParseRequestAnswer decodes a 0x00E0/0x00E3 answer.
func ParseRequestAnswer(data []byte) (RequestAnswer, error) {
	if len(data) < RequestAnswerSize {
		return RequestAnswer{}, fmt.Errorf("parse request answer of %d bytes: %w", len(data), ErrShortBody)
	}
	a := RequestAnswer{
		CompanyLicence: trimASCII(data[0:16]),
		DriverLicence:  trimASCII(data[16:35]),
		Plate:          trimASCII(data[35:41]),
		ISUStatus:      binary.BigEndian.Uint16(data[47:49]),
		Result:         data[56],
	}
	copy(a.SwipeTime[:], data[41:47])
	copy(a.TimeLimit[:], data[49:54])
	copy(a.CountLimit[:], data[54:56])
	return a, nil
}

// Append appends the 57-byte wire body.
func (a RequestAnswer) Append(dst []byte) []byte {
	dst = appendASCII(dst, a.CompanyLicence, companyLen)
	dst = appendASCII(dst, a.DriverLicence, driverLen)
	dst = appendASCII(dst, a.Plate, plateLen)
	dst = append(dst, a.SwipeTime[:]...)
	dst = binary.BigEndian.AppendUint16(dst, a.ISUStatus)
	dst = append(dst, a.TimeLimit[:]...)
	dst = append(dst, a.CountLimit[:]...)
	return append(dst, a.Result)
}

// StatusQuery is the agent's 0x0000 query: its own time, 7 BCD bytes
// YYYYMMDDhhmmss in UTC+8.
type StatusQuery struct {
	Time time.Time
}

// ParseStatusQuery decodes a 0x0000 query (the simulated meter's side).
func ParseStatusQuery(data []byte) (StatusQuery, error) {
	if len(data) < StatusQuerySize {
		return StatusQuery{}, fmt.Errorf("parse status query of %d bytes: %w", len(data), ErrShortBody)
	}
	t, err := bcdTime(data[:StatusQuerySize])
	if err != nil {
		return StatusQuery{}, fmt.Errorf("parse status query: %w", err)
	}
	return StatusQuery{Time: t}, nil
}

// Append appends the 7-byte wire body.
func (q StatusQuery) Append(dst []byte) []byte { return appendBCDTime7(dst, q.Time) }

// StatusReply is the meter's answer to a status query, 55 bytes. docs/meter-protocol.md
// leaves this body open; the layout is the one of the public C# protocol
// library (SmallChi/JT905, Taximeter_0x0000_Up). It is informative only.
type StatusReply struct {
	VendorCode     byte   `json:"vendor_code"`     // 设备厂商编号 (BCD 1)
	DeviceType     byte   `json:"device_type"`     // 设备类型 (BCD 1)
	Serial         uint32 `json:"serial"`          // 设备序列号 (BCD 3)
	HardwareVer    byte   `json:"hardware_ver"`    // 硬件版本号 (BCD 1, raw)
	SoftwareMajor  byte   `json:"software_major"`  // 软件主版本号 (BCD 1, raw)
	SoftwareMinor  byte   `json:"software_minor"`  // 软件次版本号 (BCD 1, raw)
	DeviceState    byte   `json:"device_state"`    // 设备状态: 0 normal, 1 count limit, 2 date limit, 4 trip store full, 8 sign store full
	WorkState      byte   `json:"work_state"`      // 计价器工作状态: 0x00 signed in, 0x01 signed out, 0x10 forced on, 0x11 forced off
	Plate          string `json:"plate"`           // 车牌号
	CompanyLicence string `json:"company_licence"` // 经营许可证号
	DriverLicence  string `json:"driver_license"`  // 从业资格证号
	TotalTrips     uint32 `json:"total_trips"`     // 营运次数
}

// ParseStatusReply decodes the meter's 0x0000 reply. A bad BCD serial is
// kept as zero: the reply is informative.
func ParseStatusReply(data []byte) (StatusReply, error) {
	if len(data) < StatusReplySize {
		return StatusReply{}, fmt.Errorf("parse status reply of %d bytes: %w", len(data), ErrShortBody)
	}
	serial, _ := bcdUint(data[2:5])
	return StatusReply{
		VendorCode:     data[0],
		DeviceType:     data[1],
		Serial:         uint32(serial),
		HardwareVer:    data[5],
		SoftwareMajor:  data[6],
		SoftwareMinor:  data[7],
		DeviceState:    data[8],
		WorkState:      data[9],
		Plate:          trimASCII(data[10:16]),
		CompanyLicence: trimASCII(data[16:32]),
		DriverLicence:  trimASCII(data[32:51]),
		TotalTrips:     binary.BigEndian.Uint32(data[51:55]),
	}, nil
}

// Append appends the 55-byte wire body.
func (r StatusReply) Append(dst []byte) []byte {
	dst = append(dst, r.VendorCode, r.DeviceType)
	dst = appendBCD(dst, uint64(r.Serial), 3)
	dst = append(dst, r.HardwareVer, r.SoftwareMajor, r.SoftwareMinor, r.DeviceState, r.WorkState)
	dst = appendASCII(dst, r.Plate, plateLen)
	dst = appendASCII(dst, r.CompanyLicence, companyLen)
	dst = appendASCII(dst, r.DriverLicence, driverLen)
	return binary.BigEndian.AppendUint32(dst, r.TotalTrips)
}
