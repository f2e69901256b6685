package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

func cmdDriverShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("driver show", "-config FILE [-json]", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	asJSON := fs.Bool("json", false, `one JSON object: {"set": bool, "driver": {...}}`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := connect(ctx, *path, false, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	d, ok, err := s.Outbox.Driver()
	if err != nil {
		return fmt.Errorf("read driver: %w", err)
	}
	if *asJSON {
		v := map[string]any{"set": ok}
		if ok {
			v["driver"] = d
		}
		return json.NewEncoder(stdout).Encode(v)
	}
	if cfg, err := loadToolConfig(*path); err == nil {
		noteIdentity(cfg, stderr)
	}
	if !ok {
		_, err = fmt.Fprintln(stdout, "no driver set: the meter's requests are refused")
		return err
	}
	company := ""
	if d.Company != "" {
		company = ", company " + d.Company
	}
	_, err = fmt.Fprintf(stdout, "driver: licence %s%s, set %s\n", d.Licence, company, clockTime(d.SetAt))
	return err
}
