// Package meter is the agent's side of the serial link to the taximeter:
// the JT/T 905.2-2014 peripheral protocol as docs/meter-protocol.md describes it.
//
// # Framing
//
// Every frame is
//
//	55 AA | length (2, big-endian) | device | vendor | command (2) | data (n) | check | 55 AA
//
// where length = 4 + n counts device through data, check is the XOR of
// every byte from length through data, and the frame is length + 7 bytes
// long. There is no escaping: 55 AA may occur inside the data, so the end
// is found from the length field, never by searching for the next marker.
// A length below 4 or above MaxLength (1024), a missing end marker or a bad
// check byte make the Decoder drop one byte and resynchronise on the next
// 55 AA; each case has its own sentinel error (errors.go). Multi-byte
// integers are big-endian, strings ASCII padded with 0x00, times BCD
// YYYYMMDDhhmm in UTC+8 (see BCDTime).
//
// # Layers
//
//   - Frame, AppendFrame and Decoder: the pure codec, bytes only.
//   - SignIn, SignOut, Heartbeat, RequestAnswer, HeartbeatAnswer,
//     StatusQuery, StatusReply: typed bodies, each with ParseX and Append.
//   - Event and EventFromFrame: a sign-in or sign-out as the agent stores it,
//     with its de-duplication Identity.
//   - OpenSerial: the serial port (the only user of github.com/tarm/serial).
//   - Link: runs the protocol over a port, answers the meter, hands events to
//     the agent, reopens the port with backoff, keeps LinkStats.
//
// The simulated meter used by the tests and `agent demo` is package
// taxi-agent/internal/metersim. Benchmark figures are in README.md.
package meter
