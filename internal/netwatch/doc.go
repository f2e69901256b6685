// Package netwatch tells the uploader when connectivity has likely come
// back, so that it retries the head event at once instead of waiting out a
// long backoff. A Watcher follows rtnetlink link, address and default-route
// changes on Linux. A Prober checks, cheaply, whether the API endpoint
// accepts TCP connections.
//
// # Watcher
//
// Run opens two NETLINK_ROUTE sockets through
// github.com/jsimonetti/rtnetlink/v2 and github.com/mdlayher/netlink: one
// joined to RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR,
// RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE, then one for dumps of links,
// addresses and routes (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE), so that a
// dump reply never interleaves with a notification. The first dump is a
// silent baseline, so that only later transitions become a Change:
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
// or a datagram cannot be framed, the watcher dumps again and reports the
// differences, appearances as they are seen and disappearances at the end.
// A message whose body the library cannot decode is skipped, the rest of
// its datagram used, and the fault logged once.
//
// If netlink cannot be used (EPERM, EAFNOSUPPORT, a seccomp filter), a
// dump fails, or the socket fails later, Run logs
// "netlink unavailable, falling back to backoff alone" once, Err reports the
// cause (wrapping ErrUnavailable), and Run returns nil only when its
// context is done: the caller starts it like any worker and runs on its
// backoff alone. Run returns an error only when called twice (ErrRunning).
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
// What a probe costs on the wire and in CPU is measured by TestProbeWireCost
// and BenchmarkProbe; the figures are in FIGURES.md beside this file.
package netwatch
