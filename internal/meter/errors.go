package meter

import "errors"

// Errors of the frame decoder. Each malformed case has its own sentinel;
// the decoder returns it after dropping the bytes it could not use, which
// [Decoder.Last] then returns.
var (
	// ErrNeedMore means the buffered bytes hold no complete frame yet. It
	// is not a fault: write more bytes and call Next again.
	ErrNeedMore = errors.New("need more bytes")
	// ErrNoise means bytes before a start marker were dropped.
	ErrNoise = errors.New("noise before start marker")
	// ErrBadLength means a start marker was followed by a length field
	// below 4 or above MaxLength.
	ErrBadLength = errors.New("impossible length field")
	// ErrMissingEnd means the bytes where the length field puts the end
	// marker are not 0x55 0xAA.
	ErrMissingEnd = errors.New("missing end marker")
	// ErrBadCheck means the XOR check byte does not match the frame.
	ErrBadCheck = errors.New("bad check byte")
	// ErrTruncated means a partial frame was abandoned because no further
	// bytes came within the frame timeout (see [Decoder.Abandon]).
	ErrTruncated = errors.New("truncated frame")
)

// Errors of the message bodies.
var (
	// ErrShortBody means a frame's data is shorter than its command's layout.
	ErrShortBody = errors.New("body too short")
	// ErrBadBCD means a BCD field holds a nibble above 9.
	ErrBadBCD = errors.New("invalid bcd digit")
	// ErrBadTime means a BCD time is not a calendar time (month 13, 31 Feb…).
	ErrBadTime = errors.New("invalid bcd time")
	// ErrNotEvent means a frame is not a sign-in or sign-out.
	ErrNotEvent = errors.New("not a sign-in or sign-out frame")
)

// Errors of the serial port.
var (
	// ErrPortConfig means a port setting (baud, parity, stop bits) is not supported.
	ErrPortConfig = errors.New("unsupported port setting")
	// ErrPortBusy means another process holds the port.
	ErrPortBusy = errors.New("port in use by another process")
	// ErrPortHangup means the device hung up: a USB adapter unplugged, or
	// the other end of a pseudo-terminal closed.
	ErrPortHangup = errors.New("port hung up")
	// ErrPortClosed means the port was closed while a read was waiting.
	ErrPortClosed = errors.New("port closed")
)
