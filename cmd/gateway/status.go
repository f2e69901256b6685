package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"taxi-agent/internal/gateway"
)

// statusReport is what `taxi-gateway status -json` prints.
type statusReport struct {
	Seen      []gateway.Seen   `json:"seen"`
	NeverSeen []gateway.Issued `json:"never_seen"`
	Revoked   []string         `json:"revoked"`
}

func cmdStatus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "-config FILE [-json]", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := gateway.Load(*path)
	if err != nil {
		return err
	}
	rep, err := buildStatus(cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	now := time.Now()
	fmt.Fprintf(stdout, "terminals seen: %d\n", len(rep.Seen))
	for _, s := range rep.Seen {
		last := "no punch yet"
		if !s.LastPunch.IsZero() {
			last = "last punch " + s.LastPunch.Local().Format(time.DateTime) + " (" + now.Sub(s.LastPunch).Round(time.Second).String() + " ago)"
		}
		fmt.Fprintf(stdout, "  %-10s %s  %s, last answer %s, %d request(s)\n", s.Plate, s.Serial, last, s.LastOutcome, s.Punches)
	}
	fmt.Fprintf(stdout, "certificates issued, never seen: %d\n", len(rep.NeverSeen))
	for _, rec := range rep.NeverSeen {
		fmt.Fprintf(stdout, "  %-10s %s  issued %s\n", rec.Plate, rec.Serial, rec.IssuedAt.Local().Format(time.DateOnly))
	}
	_, err = fmt.Fprintf(stdout, "revoked: %d\n", len(rep.Revoked))
	return err
}

// buildStatus joins the issued list, the revocation list and the
// terminals the gateway has seen. Gateway certificates are left out.
func buildStatus(cfg gateway.Config) (statusReport, error) {
	seen, err := gateway.ReadTerminals(cfg.State.Dir)
	if err != nil {
		return statusReport{}, err
	}
	issued, err := gateway.IssuedList(cfg.Fleet.CADir)
	if err != nil {
		return statusReport{}, err
	}
	rev, err := gateway.NewRevocations(cfg.Fleet.RevocationFile, nil)
	if err != nil {
		return statusReport{}, err
	}
	rep := statusReport{Seen: seen, NeverSeen: []gateway.Issued{}, Revoked: []string{}}
	if rep.Seen == nil {
		rep.Seen = []gateway.Seen{}
	}
	known := map[string]bool{}
	for _, s := range seen {
		known[s.Serial] = true
	}
	for _, rec := range issued {
		switch {
		case rec.Plate == "":
		case rev.Revoked(rec.Serial):
			rep.Revoked = append(rep.Revoked, rec.Serial)
		case !known[rec.Serial]:
			rep.NeverSeen = append(rep.NeverSeen, rec)
		}
	}
	return rep, nil
}
