package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"taxi-agent/internal/outbox"
)

// Client talks to the daemon over its admin socket.
type Client struct {
	path string
	hc   *http.Client
	// Timeout bounds each request but Export (default 15s): a daemon that
	// hangs must not hang the technician's terminal.
	Timeout time.Duration
}

// Dial returns a client for the socket at socketPath. It does not connect
// until the first request; a request to a socket nobody answers on fails
// with ErrNoDaemon, one the caller may not open with a *PermissionError.
func Dial(socketPath string) *Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:    1,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{path: socketPath, hc: &http.Client{Transport: tr}, Timeout: 15 * time.Second}
}

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Ping checks that a daemon answers and returns its pid.
func (c *Client) Ping(ctx context.Context) (pid int, err error) {
	var p ping
	if err := c.call(ctx, http.MethodGet, pathPing, nil, &p); err != nil {
		return 0, err
	}
	return p.PID, nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, pathStatus, nil, &st)
	return st, err
}

// Outbox returns the daemon's outbox as an OutboxStore whose requests run
// under ctx.
func (c *Client) Outbox(ctx context.Context) OutboxStore { return remoteOutbox{c: c, ctx: ctx} }

// call sends one request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, out any) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	resp, err := c.do(ctx, method, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read answer to %s %s: %w: %w", method, path, ErrProtocol, err)
	}
	return nil
}

// do sends a request and returns a 2xx response; anything else becomes the
// error the daemon described.
func (c *Client) do(ctx context.Context, method, path string, query url.Values) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: "agent", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connectError(err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Message == "" {
		return nil, fmt.Errorf("%s %s: %w: HTTP %d %s", method, path, ErrProtocol, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil, decodeError(eb)
}

// connectError classifies a failed request: nobody there, not allowed, or
// something else.
func (c *Client) connectError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (no answer on %s)", ErrNoDaemon, c.path)
	case errors.Is(err, fs.ErrPermission):
		return permissionError(c.path, err)
	}
	return fmt.Errorf("talk to the daemon on %s: %w", c.path, err)
}

// remoteOutbox is the daemon's outbox seen through the socket.
type remoteOutbox struct {
	c   *Client
	ctx context.Context
}

var _ OutboxStore = remoteOutbox{}

func (r remoteOutbox) List(state outbox.State, afterID uint64, limit int) ([]outbox.Record, uint64, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", string(state))
	}
	q.Set("after", strconv.FormatUint(afterID, 10))
	q.Set("limit", strconv.Itoa(limit))
	var p page
	if err := r.c.call(r.ctx, http.MethodGet, pathRecords, q, &p); err != nil {
		return nil, 0, err
	}
	return p.Records, p.NextAfter, nil
}

func (r remoteOutbox) Get(id uint64) (outbox.Record, error) {
	var rec outbox.Record
	err := r.c.call(r.ctx, http.MethodGet, recordPath(id), nil, &rec)
	return rec, err
}

func (r remoteOutbox) Retry(id uint64) error {
	return r.c.call(r.ctx, http.MethodPost, recordPath(id)+"/retry", nil, nil)
}

func (r remoteOutbox) RetryAllDead() (int, error) {
	var n count
	err := r.c.call(r.ctx, http.MethodPost, pathDeadRetry, nil, &n)
	return n.Count, err
}

func (r remoteOutbox) Purge(id uint64) error {
	return r.c.call(r.ctx, http.MethodDelete, recordPath(id), nil, nil)
}

func (r remoteOutbox) PurgeAllDead() (int, error) {
	var n count
	err := r.c.call(r.ctx, http.MethodDelete, pathDead, nil, &n)
	return n.Count, err
}

func (r remoteOutbox) Stats() (outbox.Stats, error) {
	var st outbox.Stats
	err := r.c.call(r.ctx, http.MethodGet, pathStats, nil, &st)
	return st, err
}

// Export streams the records; it fails with ErrProtocol if the stream ends
// without its final line.
func (r remoteOutbox) Export(fn func(outbox.Record) error) error {
	resp, err := r.c.do(r.ctx, http.MethodGet, pathExport, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		var line exportLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("read export: %w: %w", ErrProtocol, err)
		}
		switch {
		case line.Record != nil:
			n++
			if err := fn(*line.Record); err != nil {
				return err
			}
		case line.Error != nil:
			return decodeError(*line.Error)
		case line.End != nil:
			if *line.End != n {
				return fmt.Errorf("read export: %w: %d records announced, %d received", ErrProtocol, *line.End, n)
			}
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read export: %w", err)
	}
	return fmt.Errorf("read export: %w: stream cut short after %d records", ErrProtocol, n)
}

func (r remoteOutbox) SetDriver(d outbox.Driver) error {
	q := url.Values{"licence": {d.Licence}}
	if d.Company != "" {
		q.Set("company", d.Company)
	}
	return r.c.call(r.ctx, http.MethodPut, pathDriver, q, nil)
}

func (r remoteOutbox) ClearDriver() error {
	return r.c.call(r.ctx, http.MethodDelete, pathDriver, nil, nil)
}

func (r remoteOutbox) Driver() (outbox.Driver, bool, error) {
	var a driverAnswer
	if err := r.c.call(r.ctx, http.MethodGet, pathDriver, nil, &a); err != nil {
		return outbox.Driver{}, false, err
	}
	if !a.Set || a.Driver == nil {
		return outbox.Driver{}, false, nil
	}
	return *a.Driver, true, nil
}

func recordPath(id uint64) string { return pathRecords + "/" + strconv.FormatUint(id, 10) }
