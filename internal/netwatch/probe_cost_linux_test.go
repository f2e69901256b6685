package netwatch

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"taxi-agent/internal/testsupport"
)

// loCounters reads lo's transmit counters in the calling thread's network
// namespace. Loopback counts each packet once, IP header included, link
// header not (it is pulled before counting).
func loCounters() (bytes, packets int64, err error) {
	f, err := os.Open("/proc/thread-self/net/dev")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != "lo" {
			continue
		}
		// rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets ...
		fields := strings.Fields(rest)
		if len(fields) < 10 {
			return 0, 0, fmt.Errorf("lo line: %q", rest)
		}
		if bytes, err = strconv.ParseInt(fields[8], 10, 64); err != nil {
			return 0, 0, err
		}
		packets, err = strconv.ParseInt(fields[9], 10, 64)
		return bytes, packets, err
	}
	return 0, 0, fmt.Errorf("no lo in /proc/thread-self/net/dev")
}

// sniffer captures the IPv4 TCP packets on lo of the calling thread's
// namespace, each once (as received), with a packet socket.
type sniffer struct{ fd int }

func newSniffer() (*sniffer, error) {
	proto := int(htons(unix.ETH_P_IP))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: lo.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket: %w", err)
	}
	return &sniffer{fd: fd}, nil
}

// packets drains what was captured: "FLAGS size" per packet.
func (s *sniffer) packets() []string {
	var out []string
	buf := make([]byte, 1<<16)
	for {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			return out
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n < 20 || buf[9] != unix.IPPROTO_TCP {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		flags := buf[ihl+13]
		var names []string
		for _, f := range []struct {
			bit  byte
			name string
		}{{0x02, "SYN"}, {0x01, "FIN"}, {0x04, "RST"}, {0x10, "ACK"}} {
			if flags&f.bit != 0 {
				names = append(names, f.name)
			}
		}
		out = append(out, fmt.Sprintf("%s %d", strings.Join(names, "+"), int(buf[2])<<8|int(buf[3])))
	}
}

func (s *sniffer) close() { unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// wireCost is what one connection cost on the wire.
type wireCost struct {
	packets []string // "FLAGS ip-size" as captured
	bytes   int64    // IP bytes, from lo's counters
	count   int64    // packets, from lo's counters
}

// measureWire captures one connect in the calling thread's namespace,
// against a server that accepts and reads to the end, as a TLS server
// waiting for a ClientHello would.
func measureWire(connect func(addr string) error) (wireCost, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return wireCost{}, err
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c) // until the client's FIN or RST
		c.Close()
	}()
	defer func() { ln.Close(); <-served }()

	s, err := newSniffer()
	if err != nil {
		return wireCost{}, err
	}
	defer s.close()
	b0, p0, err := loCounters()
	if err != nil {
		return wireCost{}, err
	}
	if err := connect(ln.Addr().String()); err != nil {
		return wireCost{}, err
	}
	<-served                          // the server has closed its end
	time.Sleep(20 * time.Millisecond) // and its last packet is through
	b1, p1, err := loCounters()
	if err != nil {
		return wireCost{}, err
	}
	return wireCost{packets: s.packets(), bytes: b1 - b0, count: p1 - p0}, nil
}

// TestProbeWireCost measures, in a namespace of its own (so nobody else's
// loopback traffic counts), what one probe puts on the wire, against a
// graceful close. IPv4 with Linux's default TCP options (MSS, SACK,
// timestamps, window scale); a raw-IP cellular link carries these bytes.
func TestProbeWireCost(t *testing.T) {
	ns := testsupport.NewNetns(t, "probe")
	ns.IP(t, "link", "set", "lo", "up")
	p := NewProber(ProberOptions{Timeout: time.Second})
	var probe, graceful wireCost
	err := <-ns.GoIn(func() error {
		var err error
		probe, err = measureWire(func(addr string) error {
			_, _, err := p.Probe(t.Context(), addr)
			return err
		})
		if err != nil {
			return err
		}
		graceful, err = measureWire(func(addr string) error {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			c.(*net.TCPConn).CloseWrite()   // FIN
			_, err = io.Copy(io.Discard, c) // until the server's FIN
			return err
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe (connect, RST): %v = %d packets, %d IP bytes", probe.packets, probe.count, probe.bytes)
	t.Logf("graceful close: %v = %d packets, %d IP bytes", graceful.packets, graceful.count, graceful.bytes)
	for _, w := range []wireCost{probe, graceful} {
		var sum int64
		for _, p := range w.packets {
			n, _ := strconv.Atoi(p[strings.LastIndexByte(p, ' ')+1:])
			sum += int64(n)
		}
		if int64(len(w.packets)) != w.count || sum != w.bytes {
			t.Errorf("capture %v (%d bytes) disagrees with lo's counters: %d packets, %d bytes", w.packets, sum, w.count, w.bytes)
		}
	}
	want := []string{"SYN 60", "SYN+ACK 60", "ACK 52", "RST+ACK 52"}
	if !slices.Equal(probe.packets, want) {
		t.Errorf("probe packets %v, want %v", probe.packets, want)
	}
	if probe.bytes >= graceful.bytes {
		t.Errorf("probe %d bytes, not cheaper than a graceful close at %d", probe.bytes, graceful.bytes)
	}
}

// BenchmarkProbe measures the CPU of a probe on loopback (both ends on this
// machine), against a floor of a bare dial and close in the same run.
// Compare the two ns/op: the ratio is the prober's own overhead.
func BenchmarkProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	b.Run("floor-dial-close", func(b *testing.B) {
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("probe", func(b *testing.B) {
		p := NewProber(ProberOptions{})
		for b.Loop() {
			if ok, _, err := p.Probe(b.Context(), addr); !ok {
				b.Fatal(err)
			}
		}
	})
}
