package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"taxi-agent/internal/gateway"
)

func cmdCA(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprintln(stderr, "usage: taxi-gateway ca init [-dir DIR] [-name NAME]")
		return errUsage
	}
	fs := newFlagSet("ca init", "[-dir DIR] [-name NAME]", stderr)
	dir := fs.String("dir", defaultCADir, "directory of the fleet CA (created 0700)")
	name := fs.String("name", "taxi fleet CA", "the CA's common name")
	if err := parseFlags(fs, args[1:], 0); err != nil {
		return err
	}
	ca, err := gateway.InitCA(*dir, *name, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "fleet CA %q created in %s (valid until %s)\n"+
		"  %s  the CA certificate: every terminal's gateway.ca_file\n"+
		"  %s  its private key (0600): keep it offline, it enrolls terminals\n"+
		"next: taxi-gateway issue -dir %s -host <gateway name> -out <dir>, then -plate for each terminal\n",
		*name, *dir, ca.Cert.NotAfter.Format(time.DateOnly),
		filepath.Join(*dir, gateway.CACertFile), filepath.Join(*dir, gateway.CAKeyFile), *dir)
	return err
}
