// Package rxstamp tells when the kernel received what a TCP connection
// reads: on Linux, the software receive timestamp the kernel puts on each
// incoming packet as it enters the network stack (SO_TIMESTAMP, in
// microseconds), which TCP returns with recvmsg for the last packet a read
// consumed (socket(7), "SO_TIMESTAMP"; the kernel's
// Documentation/networking/timestamping.rst).
//
// A server that counts requests by these times counts them as they
// arrived from the network, not as its own goroutines were scheduled to
// look at them. Elsewhere than Linux, or where the kernel will not stamp,
// the times are zero.
package rxstamp
