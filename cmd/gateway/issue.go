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

func cmdIssue(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("issue", "[-dir DIR] (-plate PLATE | -host NAME[,NAME…]) -out DIR", stderr)
	dir := fs.String("dir", defaultCADir, "directory of the fleet CA")
	plate := fs.String("plate", "", "the terminal's full plate, e.g. 粤B12345")
	hosts := fs.String("host", "", "the gateway's DNS names and IP addresses, comma-separated")
	out := fs.String("out", "", "directory to write the key and certificate into")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if (*plate == "") == (*hosts == "") || *out == "" {
		fmt.Fprintln(stderr, "give -out and exactly one of -plate and -host")
		fs.Usage()
		return errUsage
	}
	ca, err := gateway.LoadCA(*dir, true)
	if err != nil {
		return err
	}
	if *plate != "" {
		rec, err := ca.IssueTerminal(*plate, *out, time.Now())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "issued %s for %s, valid until %s\n"+
			"  %s  gateway.cert_file\n  %s  gateway.key_file (0600)\n  %s  gateway.ca_file\n",
			rec.Serial, rec.Plate, rec.NotAfter.Format(time.DateOnly),
			filepath.Join(*out, "terminal.pem"), filepath.Join(*out, "terminal.key"), filepath.Join(*out, "fleet-ca.pem"))
		return err
	}
	rec, err := ca.IssueServer(strings.Split(*hosts, ","), *out, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "issued %s for the gateway %s, valid until %s\n"+
		"  %s  listen.cert_file\n  %s  listen.key_file (0600)\n",
		rec.Serial, strings.Join(rec.Hosts, ", "), rec.NotAfter.Format(time.DateOnly),
		filepath.Join(*out, "gateway.pem"), filepath.Join(*out, "gateway.key"))
	return err
}
