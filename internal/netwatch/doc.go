// Package netwatch tells the uploader when connectivity has likely come
// back, so that it retries the head event at once instead of waiting out a
// long backoff. A Watcher follows rtnetlink link, address and default-route
// changes on Linux. A Prober checks, cheaply, whether the API endpoint
// accepts TCP connections.
//
// # Watcher
//
// Run opens a NETLINK_ROUTE socket in the network namespace of the calling
// thread and joins RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR,
// RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE. It then dumps links, addresses
// and routes (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) as a silent baseline,
// so that only later transitions become a Change:
//
//   - link-up: a non-loopback link becomes IFF_UP and IFF_RUNNING. IFF_UP
//     alone (no carrier yet) is not up. link-down: it stops being both, or
//     is deleted.
//   - addr-added, addr-removed: a usable address appears or goes: global
//     scope, not tentative (IPv6 DAD done), not failed DAD, not on
//     loopback. Link-local fe80:: addresses come with every link and say
//     nothing about reaching the API. IPv6 lifetime refreshes repeat
//     RTM_NEWADDR; they are not new.
//   - default-route-added, default-route-removed: a unicast route with
//     dst_len 0 in the main table, IPv4 or IPv6.
//
// When a link goes down, its addresses and routes are forgotten: IPv4
// flushes the routes of a downed link without RTM_DELROUTE, and the route
// added after it comes back must count as new.
//
// OnUp is called for link-up, addr-added and default-route-added, after a
// random wait of up to Jitter (DefaultJitter, 500 ms) so that a fleet coming
// out of the same outage does not send in the same millisecond; up changes
// during that wait fold into the one call. The call is not withdrawn if the
// link drops again within the wait: the retry it triggers then fails
// locally, without traffic. The jitter only spreads the first kick; keeping
// a fleet under the API's rate is the uploader's job (Retry-After, backoff).
//
// If the kernel drops notifications (ENOBUFS: the socket buffer overflowed)
// the watcher dumps again and reports the differences, appearances as they
// are seen and disappearances at the end.
//
// If netlink cannot be used (EPERM, EAFNOSUPPORT, a seccomp filter, a
// system other than Linux) or the socket fails later, Run logs
// "netlink unavailable, falling back to backoff alone" once, Err reports the
// cause (wrapping ErrUnavailable), and Run returns nil only when its
// context is done: the caller starts it like any worker and runs on its
// backoff alone. Run returns an error only when called twice (ErrRunning).
//
// # Wire format
//
// Every datagram holds one or more messages, each a struct nlmsghdr (16
// bytes: u32 length including the header, u16 type, u16 flags, u32
// sequence, u32 port id) followed by its body, and padded to 4 bytes. Bodies:
// RTM_NEWLINK/DELLINK struct ifinfomsg (16 bytes: family, pad, u16 type,
// s32 index, u32 flags, u32 change); RTM_NEWADDR/DELADDR struct ifaddrmsg
// (8 bytes: family, prefix length, flags, scope, u32 index); RTM_NEWROUTE/
// DELROUTE struct rtmsg (12 bytes: family, dst_len, src_len, tos, table,
// protocol, scope, type, u32 flags); NLMSG_ERROR an s32 negative errno and
// the request's header; NLMSG_DONE ends a dump. Attributes follow the fixed
// struct: struct rtattr (u16 length including its 4-byte header, u16 type),
// value, padding to 4. Integers are in host byte order (little-endian on
// every target: arm, arm64, amd64). The watcher reads IFLA_IFNAME;
// IFA_ADDRESS, IFA_LOCAL (ours on point-to-point links), IFA_LABEL,
// IFA_FLAGS; RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE. Dump replies carry
// the watcher's own port id and request sequence; notifications carry the
// port of whoever made the change, or 0 for the kernel. A malformed message
// ends its datagram (lengths can no longer be trusted): the messages before
// it are used, and the fault is logged once.
//
// # Why a hand-rolled socket
//
// The candidates were github.com/vishvananda/netlink v1.3.1 (LinkSubscribe,
// AddrSubscribe, RouteSubscribe), github.com/jsimonetti/rtnetlink/v2 v2.3.0
// (rtnetlink.Dial with the groups, Conn.Receive, on mdlayher/netlink and
// mdlayher/socket), and a subscriber on golang.org/x/sys/unix, which the
// module already requires. Each built into a tiny main, CGO_ENABLED=0
// GOOS=linux GOARCH=arm GOARM=7, -trimpath -ldflags "-s -w", Go 1.26.
// "Loaded" is the sum of the ELF's allocated sections; the file size moves
// in steps of 64 KiB, the ARM linker's segment alignment. Against a bare
// main (fmt only) and against a main that already links what the agent
// links (net/http, crypto/tls, log/slog, encoding/json, x/sys/unix):
//
//	                                     loaded bytes added   file bytes added
//	                                     bare     agent-like  bare     agent-like
//	vishvananda/netlink (subscribe only) 560 975  276 229     589 824  262 144
//	jsimonetti/rtnetlink/v2 (idem)       502 386  295 008     524 288  262 144
//	this package, Watcher                567 311   99 578     589 824  131 072
//	this package, Watcher and Prober        -     109 562        -     131 072
//
// The library rows only subscribe and print; they have none of the
// transition tracking, jitter, resync or logging above, which this
// package's rows include. Its bare-main figure is mostly log/slog, which the
// agent links anyway. Inside the agent, the hand-rolled watcher costs about
// a third of either library's bare subscription. It is also the cleaner
// choice here: one socket, three dumps, four message types and a dozen
// attributes, about 370 lines of parser and socket code with comments, with
// no extra module (vishvananda pulls in vishvananda/netns and opens a socket
// and a goroutine per subscription, three here; jsimonetti pulls in mdlayher/netlink, mdlayher/socket,
// x/net/bpf and x/sync), and a pure parser tested on captured datagrams.
// No module was added. The socket goes through os.NewFile into the
// runtime's poller, so closing it ends a blocked read; idle, the watcher
// costs no CPU, a 32 KiB read buffer and its goroutine pair.
//
// # Prober
//
// Probe is a TCP connect, then a close with SO_LINGER 0, which sends RST:
// no payload, no FIN exchange, no TIME_WAIT. Prober.Run probes every
// Interval (DefaultProbeInterval, 60 s; never below MinProbeInterval, 10 s)
// plus up to a quarter of it at random, only while the caller says its
// backoff is long for network reasons, and calls OnReachable when a probe
// succeeds after failures.
//
// What it costs, measured by TestProbeWireCost in a namespace of its own
// (a packet socket on lo, cross-checked with lo's counters; IPv4 with
// Linux's default TCP options: MSS, SACK, timestamps, window scale; a raw-IP
// cellular link carries exactly these IP bytes):
//
//	probe, connect + RST      SYN 60, SYN-ACK 60, ACK 52, RST 52       4 packets, 224 bytes
//	connect + graceful close  SYN, SYN-ACK, ACK, FIN, FIN, ACK (52)    6 packets, 328 bytes
//
// Name resolution, if addr is a host name not cached, adds a DNS query and
// answer. With no route, a probe fails locally and costs nothing; towards a
// dead upstream it costs SYN retransmissions (1 s, 3 s within the 5 s
// timeout: up to 3 SYNs, 180 bytes, nothing back). Even probing all day at
// the cap of one a minute would be 1 440 probes, 315 KiB if each one
// completed, 253 KiB if each timed out; in practice the first success ends
// the long backoff and with it the probing. For comparison, one TLS
// handshake carries the server's certificate chain, several KiB.
//
// CPU, BenchmarkProbe on the development machine (x86 Xeon, both ends on
// loopback, so the figure includes the server's side): 48-60 µs and 31
// allocations per probe, 1.07 times a bare net.Dial and Close measured in
// the same run (the extra is the dialer's timeout context and the
// result). At one probe a minute it is immaterial on any board.
package netwatch
