package meter

import (
	"encoding/binary"
	"fmt"
)

// Framing constants (see the package documentation).
const (
	// Both the start and the end marker are 0x55 0xAA.
	markerHi = 0x55
	markerLo = 0xAA

	// MaxLength is the largest length field the decoder accepts. A larger
	// one is treated as line noise.
	MaxLength = 1024
	// MinLength is the smallest possible length field: device, vendor and
	// a 2-byte command with no data.
	MinLength = 4
	// MaxData is the largest frame data AppendFrame can encode.
	MaxData = MaxLength - MinLength
	// Overhead is the number of bytes a frame has beyond its length field:
	// start (2), length (2), check (1), end (2). A frame is length+Overhead long.
	Overhead = 7
)

// Device types of the frame's device byte.
const (
	DeviceISU   = 0x00 // the terminal, i.e. this agent
	DeviceMeter = 0x02 // the taximeter
)

// Commands of the taximeter link. A reply carries the command it answers.
const (
	CmdStatus         uint16 = 0x0000 // status query (agent → meter) and its reply
	CmdSignInRequest  uint16 = 0x00E0 // 计价器开机 request
	CmdSignIn         uint16 = 0x00E1 // 开机成功: a driver signed in
	CmdSignOutRequest uint16 = 0x00E3 // 计价器关机 request
	CmdSignOut        uint16 = 0x00E4 // 关机成功: a driver signed out
	CmdTrip           uint16 = 0x00E8 // 营运数据: a trip record (ignored)
	CmdHeartbeat      uint16 = 0x00E9 // heartbeat
	CmdSignOutResend  uint16 = 0x00F1 // 关机当班营运数据补传: a sign-out re-sent later
	CmdTripResend     uint16 = 0x00F2 // 营运数据补传: a trip record re-sent later (ignored)
)

// Result bytes of replies.
const (
	ResultOK     byte = 0x90 // done (stored)
	ResultFailed byte = 0xFF // failed (not stored; the meter re-sends)
)

// Frame is one decoded frame. When it comes from a Decoder, Data aliases
// the decoder's buffer: copy what must outlive the next Decoder.Write.
type Frame struct {
	Device, Vendor byte
	Command        uint16
	Data           []byte
}

// String describes the frame for humans: command name and data size.
func (f Frame) String() string {
	return fmt.Sprintf("%s dev=%02X vendor=%02X len=%d", CommandName(f.Command), f.Device, f.Vendor, len(f.Data))
}

// IsVendorCommand reports whether the command is a vendor command (first byte not 0x00).
func IsVendorCommand(cmd uint16) bool { return cmd>>8 != 0 }

// CommandName names a command for logs and the monitor, e.g. "SIGN_IN";
// unknown standard commands read "0x00E7", vendor commands "VENDOR_0x01A2".
func CommandName(cmd uint16) string {
	switch cmd {
	case CmdStatus:
		return "STATUS"
	case CmdSignInRequest:
		return "SIGN_IN_REQUEST"
	case CmdSignIn:
		return "SIGN_IN"
	case CmdSignOutRequest:
		return "SIGN_OUT_REQUEST"
	case CmdSignOut:
		return "SIGN_OUT"
	case CmdTrip:
		return "TRIP"
	case CmdHeartbeat:
		return "HEARTBEAT"
	case CmdSignOutResend:
		return "SIGN_OUT_RESEND"
	case CmdTripResend:
		return "TRIP_RESEND"
	}
	if IsVendorCommand(cmd) {
		return fmt.Sprintf("VENDOR_0x%04X", cmd)
	}
	return fmt.Sprintf("0x%04X", cmd)
}

// AppendFrame appends the wire encoding of f to dst and returns the
// extended slice. It panics if f.Data is longer than MaxData, which no
// message of this protocol is: that is a bug in the caller.
func AppendFrame(dst []byte, f Frame) []byte {
	if len(f.Data) > MaxData {
		panic(fmt.Sprintf("meter: frame data of %d bytes exceeds %d", len(f.Data), MaxData))
	}
	n := MinLength + len(f.Data)
	start := len(dst)
	dst = append(dst, markerHi, markerLo, byte(n>>8), byte(n), f.Device, f.Vendor, byte(f.Command>>8), byte(f.Command))
	dst = append(dst, f.Data...)
	dst = append(dst, check(dst[start+2:]), markerHi, markerLo)
	return dst
}

// check is the XOR of b: the frame's check byte over length through data.
func check(b []byte) byte {
	var x byte
	// Eight bytes at a time: the check is the XOR of the folded word.
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		w ^= w >> 32
		w ^= w >> 16
		w ^= w >> 8
		x ^= byte(w)
		b = b[8:]
	}
	for _, c := range b {
		x ^= c
	}
	return x
}
