package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"taxi-agent/internal/version"
)

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "[-json]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	info := version.Get()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(info)
	}
	_, err := fmt.Fprintln(stdout, strings.Replace(info.String(), "taxi-agent", "taxi-gateway", 1))
	return err
}
