package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/uploader"
)

// drainResult is the drain rate of the agent against the bare loop.
type drainResult struct {
	Events      int
	Agent, Bare time.Duration // wall time to deliver Events
}

// measureDrain starts the agent on an outbox holding events pending
// events and times exec → the last delivery, between two halves of the
// bare loop against the same fake.
func measureDrain(bin, work string, srv *punchsim.Server, events int) (drainResult, error) {
	res := drainResult{Events: events}
	t, err := newTerminal(bin, work, "drain", srv)
	if err != nil {
		return res, err
	}
	defer t.close()
	if err := fillOutbox(t.cfg.Outbox.Path, events, t.cfg.Outbox.MaxSizeMiB); err != nil {
		return res, err
	}
	bare1, err := bareLoop(srv, 0, events/2)
	if err != nil {
		return res, err
	}
	a, logs, _, err := t.start()
	if err != nil {
		return res, err
	}
	defer a.Close()
	if !logs.waitDelivered(events, timeout(30*time.Minute)) {
		return res, fmt.Errorf("drain stalled at %d of %d\n%s", logs.Delivered(), events, logs.Tail())
	}
	res.Agent = time.Since(a.Started)
	if err := stop(a, logs); err != nil {
		return res, err
	}
	bare2, err := bareLoop(srv, events/2, events-events/2)
	if err != nil {
		return res, err
	}
	res.Bare = bare1 + bare2
	return res, nil
}

// punchBody is the request body, as the uploader sends it.
type punchBody struct {
	PlateNumber   string `json:"plate_number"`
	DriverLicense string `json:"driver_license"`
	EventTime     string `json:"event_time"`
	EventType     string `json:"event_type"`
	RegionID      int64  `json:"region_id"`
}

// bareLoop is the floor of the drain rate: the least a client must do per
// event, one after the other: build the body, sign it with the same keys
// and code (uploader.DirectAuth), POST it on a kept-alive connection, read
// the answer and verify its signature.
func bareLoop(srv *punchsim.Server, first, n int) (time.Duration, error) {
	k := srv.Keys()
	auth, err := uploader.NewDirectAuth(uploader.DirectAuthConfig{
		MchID: k.MchID, MerchantSerialNo: k.MerchantSerialNo, PrivateKeyFile: k.PrivateKeyFile,
		PublicKeyID: k.PublicKeyID, PublicKeyFile: k.PublicKeyFile,
	})
	if err != nil {
		return 0, err
	}
	pem, err := os.ReadFile(k.CAFile)
	if err != nil {
		return 0, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := srv.URL() + punchsim.Path
	ctx := context.Background()
	now, boot := time.Now(), bootID()

	start := time.Now()
	for i := first; i < first+n; i++ {
		r := record(1_000_000+i, now, boot) // drivers of their own
		body, err := json.Marshal(punchBody{r.Event.PlateNumber, r.Event.DriverLicense, r.Event.EventTime, r.Event.Type, r.Event.RegionID})
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "bench-bare")
		if err := auth.Sign(ctx, req, body); err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNoContent {
			return 0, fmt.Errorf("bare punch: %d %v %s", resp.StatusCode, err, answer)
		}
		if err := auth.Verify(ctx, resp, answer); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// uploaderBench runs internal/uploader's BenchmarkDrainVsBare, the drain
// loop on an in-memory store against the same bare loop, and returns its
// drain/bare ratio and rates.
func uploaderBench() (ratio, drainRate, bareRate float64, err error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkDrainVsBare$", "-benchtime", "1x", "./internal/uploader/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("go test -bench DrainVsBare: %w\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if !strings.HasPrefix(line, "BenchmarkDrainVsBare") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			v, perr := strconv.ParseFloat(f[i-1], 64)
			if perr != nil {
				continue
			}
			switch f[i] {
			case "drain/bare":
				ratio = v
			case "drain_events/s":
				drainRate = v
			case "bare_events/s":
				bareRate = v
			}
		}
	}
	if ratio == 0 {
		return 0, 0, 0, fmt.Errorf("no drain/bare in:\n%s", out)
	}
	return ratio, drainRate, bareRate, nil
}
