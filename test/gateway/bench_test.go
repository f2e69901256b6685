package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taxi-agent/internal/gateway"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/uploader"
	"taxi-agent/test/harness"
)

// The benchmarks compare the relay with the bare punch call in the same
// run: the floor is uploader.Client straight to the fake (sign, POST,
// verify), the relay is terminals' uploader.Client through an in-process
// gateway with an unlimited rate to the same fake. Figures: README.md,
// "Gateway mode".

// inProcessGateway serves a gateway for ep with rate perSecond on loopback
// and returns its URL and a terminal certificate directory maker.
func inProcessGateway(tb testing.TB, ep *punchsim.Server, perSecond float64) (string, func(plate string) string) {
	tb.Helper()
	dir := tb.TempDir()
	ca, err := gateway.InitCA(filepath.Join(dir, "ca"), "bench CA", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ca.IssueServer([]string{"127.0.0.1"}, filepath.Join(dir, "server"), time.Now()); err != nil {
		tb.Fatal(err)
	}
	keys := ep.Keys()
	cfg := gateway.Default()
	cfg.Listen = gateway.Listen{Addr: "127.0.0.1:0", CertFile: filepath.Join(dir, "server", "gateway.pem"), KeyFile: filepath.Join(dir, "server", "gateway.key")}
	cfg.Fleet = gateway.Fleet{CADir: filepath.Join(dir, "ca"), RevocationFile: filepath.Join(dir, "ca", gateway.RevokedFile)}
	cfg.WeChatPay = gateway.WeChatPay{
		BaseURL: ep.URL(), MchID: keys.MchID, MerchantSerialNo: keys.MerchantSerialNo, PrivateKeyFile: keys.PrivateKeyFile,
		PublicKeyID: keys.PublicKeyID, PublicKeyFile: keys.PublicKeyFile, CAFile: keys.CAFile,
		AttemptTimeout: gateway.Duration{Duration: 8 * time.Second},
	}
	cfg.Limit.Rate, cfg.Limit.Jitter.Duration = perSecond, 0
	cfg.State.Dir = dir
	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler), "bench", gateway.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx, ln, nil); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	var mu sync.Mutex
	enroll := func(plate string) string {
		mu.Lock()
		defer mu.Unlock()
		d := filepath.Join(dir, "t", plate)
		if _, err := ca.IssueTerminal(plate, d, time.Now()); err != nil {
			tb.Fatal(err)
		}
		return d
	}
	return "https://" + ln.Addr().String(), enroll
}

func directClient(tb testing.TB, ep *punchsim.Server) *uploader.Client {
	tb.Helper()
	k := ep.Keys()
	auth, err := uploader.NewDirectAuth(uploader.DirectAuthConfig{MchID: k.MchID, MerchantSerialNo: k.MerchantSerialNo,
		PrivateKeyFile: k.PrivateKeyFile, PublicKeyID: k.PublicKeyID, PublicKeyFile: k.PublicKeyFile})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := uploader.NewClient(uploader.Config{BaseURL: ep.URL(), CAFile: k.CAFile, TransportRetries: -1}, auth)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func terminalClient(tb testing.TB, url, dir string) *uploader.Client {
	tb.Helper()
	auth, err := uploader.NewGatewayAuth(uploader.GatewayAuthConfig{CertFile: filepath.Join(dir, "terminal.pem"),
		KeyFile: filepath.Join(dir, "terminal.key"), CAFile: filepath.Join(dir, "fleet-ca.pem")})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := uploader.NewClient(uploader.Config{BaseURL: url, TransportRetries: -1}, auth)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// event n of the terminal with plate: a distinct punch each time.
func event(plate string, n int) punch.Event {
	at := time.Now().Add(-time.Duration(n) * time.Millisecond).In(time.FixedZone("UTC+8", 8*3600))
	return punch.Event{Type: punch.SignIn, DriverLicense: harness.Licence(n), PlateNumber: plate, RegionID: 440300,
		EventTime: at.Format(outbox.EventTimeLayout)}
}

// run sends n punches over the clients, concurrently one goroutine each,
// and returns the punches per second and each punch's latency.
func run(tb testing.TB, clients []*uploader.Client, plates []string, n int) (float64, []time.Duration) {
	tb.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	per := n / len(clients)
	for i, c := range clients {
		wg.Go(func() {
			for k := range per {
				t0 := time.Now()
				if derr := c.Send(context.Background(), event(plates[i], i*per+k+int(start.UnixNano()%1e6))); derr != nil {
					tb.Errorf("send: %v", derr)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return float64(per*len(clients)) / time.Since(start).Seconds(), lat
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// BenchmarkRelayThroughput: punches per second through the gateway (8
// terminals, unlimited rate) as a ratio of the bare sign+POST+verify loop
// (8 goroutines) against the same fake in the same run, in alternating
// rounds. Everything shares this machine's cores, so the ratio is of CPU
// work: the relay adds a TLS hop and the gateway's HTTP handling, and moves
// the RSA signing and verifying from the terminal to the gateway.
func BenchmarkRelayThroughput(b *testing.B) {
	ep := harness.StartEndpoint(b, punchsim.Options{})
	url, enroll := inProcessGateway(b, ep, 1e6)
	const conc = 8
	var direct, relay []*uploader.Client
	plates := make([]string, conc)
	for i := range conc {
		plates[i] = fmt.Sprintf("粤B%05d", i)
		direct = append(direct, directClient(b, ep))
		relay = append(relay, terminalClient(b, url, enroll(plates[i])))
	}
	run(b, direct, plates, conc*4) // warm: connections and sessions
	run(b, relay, plates, conc*4)
	b.ResetTimer()
	// Rounds alternate, so that both see the same load on a shared machine.
	const rounds = 10
	n := max(b.N, 400) / rounds
	var dt, rt float64
	for range rounds {
		d, _ := run(b, direct, plates, n)
		r, _ := run(b, relay, plates, n)
		dt, rt = dt+float64(n)/d, rt+float64(n)/r
	}
	d, r := float64(n*rounds)/dt, float64(n*rounds)/rt
	b.ReportMetric(d, "direct-punches/s")
	b.ReportMetric(r, "relay-punches/s")
	b.ReportMetric(r/d, "relay/direct")
}

// BenchmarkRelayAddedLatency: one terminal, one punch at a time, the bare
// call and the relay alternating so that both see the same machine: the
// relay's latency minus the bare call's, at p50 and p99.
func BenchmarkRelayAddedLatency(b *testing.B) {
	ep := harness.StartEndpoint(b, punchsim.Options{})
	url, enroll := inProcessGateway(b, ep, 1e6)
	plates := []string{"粤B00001"}
	direct := []*uploader.Client{directClient(b, ep)}
	relay := []*uploader.Client{terminalClient(b, url, enroll(plates[0]))}
	run(b, direct, plates, 20)
	run(b, relay, plates, 20)
	b.ResetTimer()
	var dl, rl []time.Duration
	for range max(b.N, 500) {
		_, d := run(b, direct, plates, 1)
		_, r := run(b, relay, plates, 1)
		dl, rl = append(dl, d...), append(rl, r...)
	}
	b.ReportMetric(float64(pct(dl, 0.5).Microseconds())/1000, "direct-p50-ms")
	b.ReportMetric(float64(pct(rl, 0.5).Microseconds())/1000, "relay-p50-ms")
	b.ReportMetric(float64((pct(rl, 0.5)-pct(dl, 0.5)).Microseconds())/1000, "added-p50-ms")
	b.ReportMetric(float64(pct(dl, 0.99).Microseconds())/1000, "direct-p99-ms")
	b.ReportMetric(float64(pct(rl, 0.99).Microseconds())/1000, "relay-p99-ms")
	b.ReportMetric(float64((pct(rl, 0.99)-pct(dl, 0.99)).Microseconds())/1000, "added-p99-ms")
}

// BenchmarkIdleConnectionMemory opens 10 000 (-gateway.conns) mutual-TLS
// connections to the real taxi-gateway binary, each having made one
// request and kept alive, and reports the gateway's resident memory per
// connection: (RSS with them − RSS before) / connections.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	conns := 10000
	if v, err := strconv.Atoi(os.Getenv("GATEWAY_CONNS")); err == nil && v > 0 {
		conns = v
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(conns+1000) {
		lim.Cur = min(lim.Max, uint64(conns+1000))
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // the gateway inherits it
	}
	ep := harness.StartEndpoint(b, punchsim.Options{})
	g := harness.NewGateway(b, gatewayBin, ep, 100)
	g.Config.Log.Level = "warn"
	g.WriteConfig()
	a := g.Start()
	dir := g.Enroll(harness.Plate)
	c := g.Client(dir)
	tr := c.Transport.(*http.Transport)
	before := rss(b, a.Pid())
	b.ResetTimer()
	// One request per connection, each on a transport of its own so that
	// every connection stays open: a GET of / is a 404 that costs the
	// gateway no WeChat Pay call.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	start := make(chan struct{})
	var opened sync.WaitGroup
	opened.Add(conns)
	for range conns {
		wg.Go(func() {
			sem <- struct{}{}
			req, _ := http.NewRequest(http.MethodGet, g.URL()+"/", nil)
			tr2 := tr.Clone()
			tr2.MaxIdleConnsPerHost = 1
			cl := &http.Client{Transport: tr2}
			resp, err := cl.Do(req)
			<-sem
			if err != nil {
				b.Error(err)
				opened.Done()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // read to the end, or the connection is not kept
			resp.Body.Close()
			opened.Done()
			<-start // keep tr2's idle connection open
			tr2.CloseIdleConnections()
		})
	}
	opened.Wait()
	time.Sleep(time.Second)
	after := rss(b, a.Pid())
	b.ReportMetric(float64(after-before)/float64(conns)/1024, "KiB/conn")
	b.ReportMetric(float64(conns), "conns")
	b.ReportMetric(float64(after)/(1<<20), "gateway-RSS-MiB")
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.Pid()))
	b.ReportMetric(float64(len(fds)), "gateway-fds")
	if len(fds) < conns {
		b.Fatalf("the gateway holds %d descriptors for %d connections: they did not stay open", len(fds), conns)
	}
	close(start)
	wg.Wait()
}

// rss is the resident set size of process pid, in bytes.
func rss(tb testing.TB, pid int) int64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}
