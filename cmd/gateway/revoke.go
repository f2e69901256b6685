package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"taxi-agent/internal/gateway"
)

func cmdRevoke(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("revoke", "[-dir DIR] [-list FILE] SERIAL | -plate PLATE", stderr)
	dir := fs.String("dir", defaultCADir, "directory of the fleet CA")
	list := fs.String("list", "", "revocation list (default DIR/revoked): the gateway's fleet.revocation_file")
	plate := fs.String("plate", "", "revoke every certificate issued for this plate")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	if (*plate == "") == (fs.NArg() == 0) {
		fmt.Fprintln(stderr, "give a serial or -plate, not both")
		fs.Usage()
		return errUsage
	}
	if *list == "" {
		*list = filepath.Join(*dir, gateway.RevokedFile)
	}
	issued, err := gateway.IssuedList(*dir)
	if err != nil {
		return err
	}
	var serials []string
	what := *plate
	if *plate != "" {
		for _, rec := range issued {
			if rec.Plate == *plate {
				serials = append(serials, rec.Serial)
			}
		}
	} else {
		want := strings.TrimLeft(strings.ToUpper(strings.ReplaceAll(fs.Arg(0), ":", "")), "0")
		for _, rec := range issued {
			if rec.Serial == want {
				serials, what = append(serials, rec.Serial), rec.Plate+strings.Join(rec.Hosts, ",")
			}
		}
	}
	if len(serials) == 0 {
		return fmt.Errorf("revoke %s: %w (see %s)", strings.TrimSpace(*plate+" "+fs.Arg(0)), gateway.ErrNotIssued, filepath.Join(*dir, gateway.IssuedFile))
	}
	if err := gateway.Revoke(*list, serials, fmt.Sprintf("%s, revoked %s", what, time.Now().UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	for _, s := range serials {
		fmt.Fprintf(stdout, "revoked %s (%s) in %s\n", s, what, *list)
	}
	_, err = fmt.Fprintln(stdout, "a running gateway refuses it from its next connection or request; no restart needed")
	return err
}
