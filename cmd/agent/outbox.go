package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/cli"
	"taxi-agent/internal/config"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/stamp"
)

// cmdOutbox dispatches `agent outbox <sub>`: the technician's view of the
// queue, through the daemon's socket or, with the daemon stopped, the file.
func cmdOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []command{
		{Name: "ls", Summary: "list records, oldest first", Run: cmdOutboxLs},
		{Name: "show", Summary: "one record with its delivery history", Run: cmdOutboxShow},
		{Name: "retry", Summary: "move a dead record (or all) back to pending", Run: cmdOutboxRetry},
		{Name: "purge", Summary: "delete a dead record (or all), with -yes", Run: cmdOutboxPurge},
		{Name: "export", Summary: "every record as JSON lines or CSV, for a support ticket", Run: cmdOutboxExport},
	}
	return cli.Dispatch(ctx, "agent outbox", "-config FILE [flags]", subs, args, stdout, stderr)
}

// loadToolConfig reads the parts of the config the technician's commands
// need: the socket, the outbox file and the meter port. Unlike config.Load
// it does not check the WeChat Pay key files, which a technician in the
// agent's group cannot read and these commands do not use.
func loadToolConfig(path string) (config.Config, error) {
	cfg, err := config.Read(path)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) && errors.Is(pe, fs.ErrPermission) {
		return config.Config{}, admin.PermissionDenied(path, pe)
	}
	if err != nil {
		return cfg, err
	}
	var problems config.Problems
	if cfg.Outbox.Path == "" {
		problems = append(problems, config.Problem{Key: "outbox.path", Msg: "missing"})
	}
	if cfg.Admin.Socket == "" {
		problems = append(problems, config.Problem{Key: "admin.socket", Msg: "missing"})
	}
	if len(problems) > 0 {
		return cfg, problems
	}
	return cfg, nil
}

// connect reaches the outbox for a command: the daemon if it answers, else
// the file (read-only unless write). Without a daemon it says so on stderr.
func connect(ctx context.Context, configPath string, write bool, stderr io.Writer) (*admin.Session, error) {
	cfg, err := loadToolConfig(configPath)
	if err != nil {
		return nil, err
	}
	s, err := admin.Connect(ctx, cfg.Admin.Socket, cfg.Outbox.Path, outbox.Options{
		ReadOnly:  !write,
		MaxSize:   cfg.Outbox.MaxSizeMiB << 20,
		Retention: cfg.Outbox.Retention,
	})
	if err != nil {
		return nil, err
	}
	if s.NoDaemon != nil {
		mode := "read-only"
		if write {
			mode = "read-write"
		}
		fmt.Fprintf(stderr, "note: %v; using %s directly (%s)\n", s.NoDaemon, cfg.Outbox.Path, mode)
	}
	if s.Quarantined != nil {
		fmt.Fprintf(stderr, "warning: %v\n", s.Quarantined)
	}
	return s, nil
}

// parseWithArgs parses flags that may come before or after positional
// arguments (`show 12 -config F` as well as `show -config F 12`) and
// returns the positional ones.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseSome(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Args()[0])
		args = fs.Args()[1:]
	}
}

// parseTarget parses the flags and the one ID a command acts on, or none
// with -all-dead (allDead, which the flags just set; id is then 0).
func parseTarget(fs *flag.FlagSet, args []string, allDead *bool) (id uint64, err error) {
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return 0, err
	}
	switch {
	case len(pos) > 1:
		return 0, usageError(fs, "unexpected argument %q: give one record ID or -all-dead", pos[1])
	case *allDead && len(pos) == 1:
		return 0, usageError(fs, "record %s and -all-dead: give one or the other", pos[0])
	case !*allDead && len(pos) == 0:
		return 0, usageError(fs, "no record: give a record ID or -all-dead")
	}
	if *allDead {
		return 0, nil
	}
	return parseID(pos[0])
}

// usageError says what is wrong with the command line, naming the bad
// value, then prints the usage; it returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "agent %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// hint is a command line to suggest, quoted where the shell needs it:
// 'agent outbox ls -config /etc/taxi-agent/agent.toml -after 50'.
func hint(args ...string) string {
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"\\$`;&|<>()*?[]#~") {
			args[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(a) + `"`
		}
	}
	return "'agent " + strings.Join(args, " ") + "'"
}

// parseID reads a record id.
func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("read record id: %q is not a record id (a positive number from 'agent outbox ls')", s)
	}
	return id, nil
}

// parseState reads a -state flag.
func parseState(s string) (outbox.State, bool) {
	switch st := outbox.State(s); st {
	case "", outbox.Pending, outbox.Dead, outbox.Delivered:
		return st, true
	}
	return "", false
}

// clockTime shows t in China time, to the second: what the technician's
// watch says.
func clockTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(stamp.Zone).Format("2006-01-02 15:04:05")
}

// ago is "3m12s ago" or "in 4m" for t seen from now.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	if d := now.Sub(t); d >= 0 {
		return age(d) + " ago"
	}
	return "in " + age(t.Sub(now))
}

// age is a short human duration: 45s, 12m05s, 3h05m, 2d04h.
func age(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// attemptError is one line about a failed attempt: what WeChat Pay
// answered, or what went wrong on the way.
func attemptError(e *outbox.AttemptError) string {
	if e == nil {
		return ""
	}
	var parts []string
	if e.Status != 0 {
		parts = append(parts, "HTTP "+strconv.Itoa(e.Status))
	}
	if e.Code != "" {
		parts = append(parts, e.Code)
	}
	if e.Message != "" {
		parts = append(parts, strconv.Quote(e.Message))
	}
	if e.Err != "" {
		parts = append(parts, withoutURL(e.Err))
	}
	if e.RequestID != "" {
		parts = append(parts, "Request-ID "+e.RequestID)
	}
	return strings.Join(parts, " ")
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
