package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"time"

	"taxi-agent/internal/netwatch"
	"taxi-agent/internal/uploader"
)

// probeAfter is how long the next retry must be away, after network
// errors, before a TCP reachability probe is worth its 224 bytes
// (netwatch's measurement): below it the backoff itself retries soon enough.
const probeAfter = 30 * time.Second

// connectivity wakes the uploader the moment the network returns: on
// rtnetlink link, address and default-route changes, and, while a long
// backoff follows network errors, on a cheap TCP probe of the API host.
type connectivity struct {
	watcher *netwatch.Watcher
	prober  *netwatch.Prober
	addr    string
	up      *uploader.Uploader
}

func newConnectivity(baseURL string, up *uploader.Uploader, log *slog.Logger) *connectivity {
	c := &connectivity{up: up, addr: probeAddr(baseURL)}
	c.watcher = netwatch.New(netwatch.Options{
		Logger: log,
		OnUp: func(ch netwatch.Change) {
			log.Info("network came up; retrying the head event now", "component", "netwatch", "kind", ch.Kind, "interface", ch.Interface)
			up.Wake()
		},
	})
	c.prober = netwatch.NewProber(netwatch.ProberOptions{
		Logger:      log,
		OnReachable: func(netwatch.ProbeResult) { up.Wake() },
	})
	return c
}

func (c *connectivity) run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.watcher.Run(ctx)
	}()
	if c.addr != "" {
		c.prober.Run(ctx, c.addr, c.probing)
	}
	<-done
}

// probing is true while the uploader waits out a long backoff after a
// network error; an endpoint that answers (429, 5xx, 401) is reachable and
// probing it would only add traffic.
func (c *connectivity) probing() bool {
	st := c.up.Status()
	return st.LastError != nil && st.LastError.Kind == uploader.KindNetwork.String() &&
		st.Held == "" && time.Until(st.NextAttempt) > probeAfter
}

// status is the connectivity part of `agent status`.
func (c *connectivity) status() json.RawMessage {
	var s struct {
		Netlink      *netwatch.Change      `json:"last_netlink_event,omitempty"`
		NetlinkError string                `json:"netlink_error,omitempty"`
		Probe        *netwatch.ProbeResult `json:"last_probe,omitempty"`
		NextAttempt  time.Time             `json:"next_attempt,omitzero"`
		BackoffSecs  float64               `json:"current_backoff_seconds"`
	}
	if ch, ok := c.watcher.Last(); ok {
		s.Netlink = &ch
	}
	if err := c.watcher.Err(); err != nil {
		s.NetlinkError = err.Error()
	}
	if p, ok := c.prober.Last(); ok {
		s.Probe = &p
	}
	if next := c.up.Status().NextAttempt; !next.IsZero() {
		s.NextAttempt = next
		s.BackoffSecs = max(0, time.Until(next).Seconds())
	}
	b, _ := json.Marshal(s)
	return b
}

// probeAddr is host:port of the API endpoint.
func probeAddr(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
