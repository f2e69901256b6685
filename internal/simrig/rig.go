package simrig

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"taxi-agent/internal/config"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/redact"
)

// Vehicle of every bench config.
const (
	Plate    = "粤B12345"
	RegionID = 440300
)

// Options tune a Rig.
type Options struct {
	// OnExchange sees every request the fake endpoint handles (see
	// punchsim.Options.OnExchange); Describe words one.
	OnExchange func(punchsim.Exchange)
	// Meter tunes the simulated taximeter.
	Meter metersim.Options
}

// LogValue logs the meter options; their status reply logs its driver
// licence masked.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("on_exchange", o.OnExchange != nil), slog.Any("meter", o.Meter))
}

// Rig is a bench around one agent: keys, fake endpoint, simulated meter
// and the config that joins them.
type Rig struct {
	Keys     punchsim.Keys
	Endpoint *punchsim.Server
	PTY      *metersim.PTY
	Meter    *metersim.Meter
	// Config is the agent's config: outbox and admin socket in the rig's
	// directory, the meter on PTY.Path, WeChat Pay at Endpoint, and short
	// retry waits (250 ms to 1.5 s) so that a bench sees the queue move.
	Config config.Config
}

// New writes throwaway keys into dir/keys, starts the fake endpoint on a
// free loopback port and the simulated meter on a new pseudo-terminal.
// Close stops them.
func New(dir string, o Options) (*Rig, error) {
	keys, err := punchsim.GenerateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		return nil, fmt.Errorf("generate keys: %w", err)
	}
	srv, err := punchsim.New(keys, punchsim.Options{OnExchange: o.OnExchange})
	if err != nil {
		return nil, fmt.Errorf("start fake endpoint: %w", err)
	}
	pty, err := metersim.OpenPTY()
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	cfg := Config(dir, keys, srv.URL(), pty.Path)
	if err := cfg.Validate(); err != nil {
		pty.Close()
		srv.Close()
		return nil, fmt.Errorf("bench config: %w", err)
	}
	return &Rig{
		Keys: keys, Endpoint: srv, PTY: pty, Config: cfg,
		Meter: metersim.New(pty.Master, o.Meter),
	}, nil
}

// Close stops the meter and the endpoint and closes the pseudo-terminal.
func (r *Rig) Close() error {
	return errors.Join(r.Meter.Close(), r.PTY.Close(), r.Endpoint.Close())
}

// Config returns the config of an agent whose files live in dir, talking
// to the fake endpoint at url with keys and to the meter at device.
func Config(dir string, keys punchsim.Keys, url, device string) config.Config {
	cfg := config.Default()
	cfg.Vehicle = config.Vehicle{PlateNumber: Plate, RegionID: RegionID}
	cfg.Meter.Device = device
	cfg.Outbox.Path = filepath.Join(dir, "outbox.db")
	cfg.WeChatPay = keys.WeChatPay(url)
	// Short waits so that a bench sees retries in seconds; a terminal
	// uses 1 s to 5 min.
	cfg.Uploader.BackoffMin = 250 * time.Millisecond
	cfg.Uploader.BackoffMax = 1500 * time.Millisecond
	cfg.Admin.Socket = filepath.Join(dir, "admin.sock")
	return cfg
}

// EncodeConfig renders c as the TOML file `agent run -config` reads, with
// config's own keys. Durations are written as strings ("5m0s").
func EncodeConfig(c config.Config) ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteConfig writes c as TOML to path, mode 0600, after the comment
// header, if any (each line is prefixed with "# ").
func WriteConfig(path string, c config.Config, header ...string) error {
	data, err := EncodeConfig(c)
	if err != nil {
		return err
	}
	var head []byte
	for _, l := range header {
		head = append(head, "# "+l+"\n"...)
	}
	if len(head) > 0 {
		head = append(head, '\n')
	}
	if err := os.WriteFile(path, append(head, data...), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// Describe words what the fake endpoint did with one request, licence
// masked.
func Describe(x punchsim.Exchange) string {
	what := "request"
	if x.Punch != nil {
		what = fmt.Sprintf("%s for driver %s at %s", x.Punch.EventType, redact.Licence(x.Punch.DriverLicense), x.Punch.EventTime)
	}
	switch {
	case x.Accepted:
		return fmt.Sprintf("accepted %s (signed 204)", what)
	case x.Rejection != "":
		return fmt.Sprintf("refused %s: %s", what, x.Detail)
	case x.Fault == punchsim.BadSignature:
		return fmt.Sprintf("answered %s with a FORGED 204 (signature does not verify)", what)
	case x.Fault != punchsim.None:
		return fmt.Sprintf("answered %s with fault %q (HTTP %d)", what, x.Fault, x.Status)
	}
	return fmt.Sprintf("answered %s (HTTP %d)", what, x.Status)
}
