package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"taxi-agent/internal/config"
	"taxi-agent/internal/gateway"
	"taxi-agent/internal/punchsim"
)

// GatewayPackage is the import path of taxi-gateway's main package.
const GatewayPackage = "taxi-agent/cmd/gateway"

// Gateway is a fleet CA made with the real taxi-gateway binary, a
// gateway certificate for loopback, and the gateway's config, talking to a
// fake WeChat Pay. Nothing runs until Start.
type Gateway struct {
	TB         testing.TB
	Bin        string // the taxi-gateway binary
	Dir        string
	CADir      string
	Endpoint   *punchsim.Server
	Config     gateway.Config
	ConfigPath string

	runs []*Agent
	addr string // of the last Start
	mtr  string
}

// NewGateway makes the CA (taxi-gateway ca init), the gateway's
// certificate (issue -host 127.0.0.1,localhost) and a config in a
// temporary directory. Limit: rate perSecond, max wait 2 s.
func NewGateway(tb testing.TB, bin string, ep *punchsim.Server, perSecond float64) *Gateway {
	tb.Helper()
	g := &Gateway{TB: tb, Bin: bin, Dir: tb.TempDir(), Endpoint: ep}
	g.CADir = filepath.Join(g.Dir, "ca")
	g.Cmd("ca", "init", "-dir", g.CADir)
	g.Cmd("issue", "-dir", g.CADir, "-host", "127.0.0.1,localhost", "-out", filepath.Join(g.Dir, "server"))
	keys := ep.Keys()
	g.Config = gateway.Default()
	g.Config.Listen = gateway.Listen{
		Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		CertFile: filepath.Join(g.Dir, "server", "gateway.pem"), KeyFile: filepath.Join(g.Dir, "server", "gateway.key"),
	}
	g.Config.Fleet = gateway.Fleet{CADir: g.CADir, RevocationFile: filepath.Join(g.CADir, gateway.RevokedFile)}
	g.Config.WeChatPay = gateway.WeChatPay{
		BaseURL: ep.URL(), MchID: keys.MchID, MerchantSerialNo: keys.MerchantSerialNo,
		PrivateKeyFile: keys.PrivateKeyFile, PublicKeyID: keys.PublicKeyID, PublicKeyFile: keys.PublicKeyFile,
		CAFile: keys.CAFile, AttemptTimeout: gateway.Duration{Duration: 5 * time.Second},
	}
	g.Config.Limit.Rate, g.Config.Limit.MaxWait.Duration = perSecond, 2*time.Second
	g.Config.State.Dir = filepath.Join(g.Dir, "state")
	if err := os.MkdirAll(g.Config.State.Dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	g.Config.Log = gateway.Log{Level: "debug", Format: "text"}
	g.ConfigPath = filepath.Join(g.Dir, "gateway.toml")
	g.WriteConfig()
	tb.Cleanup(g.cleanup)
	return g
}

// WriteConfig writes g.Config to g.ConfigPath.
func (g *Gateway) WriteConfig() {
	g.TB.Helper()
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(g.Config); err != nil {
		g.TB.Fatal(err)
	}
	if err := os.WriteFile(g.ConfigPath, buf.Bytes(), 0o644); err != nil {
		g.TB.Fatal(err)
	}
}

// Cmd runs a taxi-gateway command to completion and returns its output;
// the test fails if it exits non-zero.
func (g *Gateway) Cmd(args ...string) string {
	g.TB.Helper()
	out, err := exec.Command(g.Bin, args...).CombinedOutput()
	if err != nil {
		g.TB.Fatalf("taxi-gateway %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Enroll issues a terminal certificate for plate into a new directory and
// returns it (terminal.pem, terminal.key, fleet-ca.pem).
func (g *Gateway) Enroll(plate string) string {
	g.TB.Helper()
	dir := filepath.Join(g.Dir, "terminals", fmt.Sprintf("%d", time.Now().UnixNano()))
	g.Cmd("issue", "-dir", g.CADir, "-plate", plate, "-out", dir)
	return dir
}

// Start runs the gateway and waits for READY=1.
func (g *Gateway) Start() *Agent {
	g.TB.Helper()
	a, err := Launch(g.Bin, []string{"run", "-config", g.ConfigPath}, filepath.Join(g.Dir, fmt.Sprintf("gateway-%d.log", len(g.runs)+1)))
	if err != nil {
		g.TB.Fatal(err)
	}
	g.runs = append(g.runs, a)
	if _, err := a.WaitReady(ReadyTimeout); err != nil {
		g.TB.Fatalf("gateway: %v\n%s", err, Tail(a.Output(), 80))
	}
	for _, st := range a.States() {
		if rest, ok := strings.CutPrefix(st, "STATUS=listening on "); ok {
			addr, metrics, _ := strings.Cut(rest, ", metrics on ")
			g.addr, g.mtr = addr, metrics
		}
	}
	if g.addr == "" {
		g.TB.Fatalf("gateway sent no listening status: %q", a.States())
	}
	return a
}

// URL is the gateway's base URL for the agent's gateway.url.
func (g *Gateway) URL() string { return "https://" + g.addr }

// MetricsURL is the gateway's Prometheus endpoint.
func (g *Gateway) MetricsURL() string { return "http://" + g.mtr + "/metrics" }

// Stop sends SIGTERM and checks that the gateway exits 0.
func (g *Gateway) Stop(a *Agent) {
	g.TB.Helper()
	code, _, err := a.Terminate(gateway.TerminalAttemptTimeout + 5*time.Second)
	if err != nil || code != 0 {
		g.TB.Fatalf("gateway stop: exit %d, %v\n%s", code, err, Tail(a.Output(), 40))
	}
}

// Client is an HTTPS client presenting the terminal certificate in dir
// (none when dir is "") and trusting only the fleet CA.
func (g *Gateway) Client(dir string) *http.Client {
	g.TB.Helper()
	ca, err := os.ReadFile(filepath.Join(g.CADir, gateway.CACertFile))
	if err != nil {
		g.TB.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if dir != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "terminal.pem"), filepath.Join(dir, "terminal.key"))
		if err != nil {
			g.TB.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	g.TB.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// Punch posts one punch body through c and returns status and body.
func (g *Gateway) Punch(ctx context.Context, c *http.Client, body string) (int, string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL()+punchsim.Path, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), resp.Header, nil
}

func (g *Gateway) cleanup() {
	for _, a := range g.runs {
		if a.Running() {
			a.Kill()
		}
		if g.TB.Failed() {
			g.TB.Logf("gateway log:\n%s", Tail(a.Output(), 60))
		}
		a.Close()
	}
}

// Output is the log of the last gateway started.
func (g *Gateway) Output() string {
	if len(g.runs) == 0 {
		return ""
	}
	return g.runs[len(g.runs)-1].Output()
}

// Terminal switches c to gateway mode through g with the terminal
// certificate in dir (see Enroll): [wechatpay] back to its default,
// [gateway] set.
func (g *Gateway) Terminal(c *config.Config, dir string) {
	c.WeChatPay = config.Default().WeChatPay
	c.Gateway = config.Gateway{
		URL:      g.URL(),
		CertFile: filepath.Join(dir, "terminal.pem"),
		KeyFile:  filepath.Join(dir, "terminal.key"),
		CAFile:   filepath.Join(dir, "fleet-ca.pem"),
	}
}

// Pin makes the next Start listen on the address the last one got, so
// that terminals find a restarted gateway where they left it.
func (g *Gateway) Pin() {
	g.TB.Helper()
	g.Config.Listen.Addr = g.addr
	g.WriteConfig()
}
