package simrig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/redact"
	"taxi-agent/internal/stamp"
)

// answerWait is how long a sign-in or sign-out action waits for the
// agent's 0x90 before it answers that the meter keeps re-sending.
const answerWait = 5 * time.Second

// ConfigFile is the agent config's name inside the bench directory.
const ConfigFile = "agent.toml"

// drivers are the 从业资格证号 the bench's shifts cycle through.
var drivers = []string{"42108319880906011X", "440301199001011234", "440303198512125678"}

// BenchOptions configure Bench.
type BenchOptions struct {
	// Dir holds the keys, agent.toml, the outbox and both sockets. It is
	// made if missing; files of an earlier bench are replaced, its outbox
	// kept. agent.toml is removed when the bench stops: it names the
	// bench's pseudo-terminal, which the kernel gives to the next program.
	Dir string
	// Interval, if positive, signs a driver in or out (in turn) every
	// Interval, as well as on demand.
	Interval time.Duration
	// Program is how the bench names the agent in the commands it prints,
	// e.g. "taxi-agent" or "./agent".
	Program string
	// Out receives the setup, the commands to run, and a line for each
	// meter exchange and endpoint answer.
	Out io.Writer
}

// bench is a running Bench.
type bench struct {
	rig   *Rig
	out   io.Writer
	start time.Time
	outMu sync.Mutex

	mu       sync.Mutex // serialises actions: one meter frame in flight
	shift    *metersim.Shift
	shifts   int
	sends    chan meterJob
	meterCtx context.Context
}

type meterJob struct {
	what string
	do   func(ctx context.Context) (metersim.Result, error)
	done chan metersim.Result
}

// Bench runs a Rig for an agent started by hand until ctx is done: it
// writes dir/agent.toml, prints how to run and watch the agent, then
// drives the meter and the endpoint on demand (Control) and every
// Interval.
func Bench(ctx context.Context, o BenchOptions) error {
	if o.Program == "" {
		o.Program = "taxi-agent"
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("make bench directory: %w", err)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("make bench directory: %w", err)
	}
	b := &bench{out: o.Out, start: time.Now(), sends: make(chan meterJob)}
	ln, err := listenControl(dir)
	if err != nil {
		return err
	}
	defer ln.Close()
	rig, err := New(dir, Options{OnExchange: func(x punchsim.Exchange) { b.say("wechat", "%s", Describe(x)) }})
	if err != nil {
		return err
	}
	defer rig.Close()
	b.rig = rig
	cfgPath := filepath.Join(dir, ConfigFile)
	err = WriteConfig(cfgPath, rig.Config,
		"Written by `sim` for a bench: throwaway keys, a simulated meter on "+rig.PTY.Path+",",
		"and a fake WeChat Pay endpoint at "+rig.Endpoint.URL()+". Not for a terminal.")
	if err != nil {
		return err
	}
	b.printSetup(dir, cfgPath, o)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.meterCtx = ctx
	var wg sync.WaitGroup
	wg.Go(func() { b.runMeter(ctx) })
	wg.Go(func() { b.serveControl(ln) })
	if o.Interval > 0 {
		wg.Go(func() { b.every(ctx, o.Interval) })
	}
	<-ctx.Done()
	ln.Close()
	rig.Meter.Close() // ends an exchange waiting for an agent that is gone
	wg.Wait()
	// The config names this bench's pseudo-terminal, whose number the
	// kernel hands to the next program that asks: an agent started from it
	// later would take over someone else's line.
	if err := os.Remove(cfgPath); err != nil {
		return fmt.Errorf("remove %s: %w", cfgPath, err)
	}
	b.say("bench", "stopped; %s removed (its meter line is gone)", cfgPath)
	return nil
}

func (b *bench) printSetup(dir, cfgPath string, o BenchOptions) {
	r := b.rig
	fmt.Fprintf(b.out, `bench in %s
  meter     simulated taximeter on %s (9600 8N1, JT/T 905.2 frames)
  endpoint  fake WeChat Pay at %s (checks every signature)
  keys      throwaway, in %s
  config    %s

Run the agent:   %s run -config %s
Watch it:        %s status -config %s
                 %s outbox ls -config %s
Drive the bench: %s sim -dir %s signin | signout | endpoint down | endpoint up | endpoint reject

`, dir, r.PTY.Path, r.Endpoint.URL(), filepath.Join(dir, "keys"), cfgPath,
		o.Program, cfgPath, o.Program, cfgPath, o.Program, cfgPath, o.Program, dir)
	if o.Interval > 0 {
		fmt.Fprintf(b.out, "A driver signs in or out every %s. Ctrl-C stops the bench.\n\n", o.Interval)
	} else {
		fmt.Fprintf(b.out, "Ctrl-C stops the bench.\n\n")
	}
}

func (b *bench) say(who, format string, args ...any) {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	fmt.Fprintf(b.out, "%7.1fs  %-8s %s\n", time.Since(b.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// every toggles the shift every interval.
func (b *bench) every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a := SignIn
			b.mu.Lock()
			if b.shift != nil {
				a = SignOut
			}
			b.mu.Unlock()
			if _, err := b.do(a); err != nil {
				b.say("bench", "%s: %v", a, err)
			}
		}
	}
}

// do performs one action and says what happened.
func (b *bench) do(a Action) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	srv := b.rig.Endpoint
	switch a {
	case SignIn:
		if b.shift != nil {
			return "", fmt.Errorf("driver %s is signed in; sign out first: %w", redact.Licence(b.shift.Driver), ErrRefused)
		}
		s := metersim.Shift{Driver: drivers[b.shifts%len(drivers)], Trips: uint32(1000 + 10*b.shifts), At: now()}
		b.shifts++
		b.shift = &s
		msg, res, ok := b.meter("sign-in of driver "+redact.Licence(s.Driver), func(ctx context.Context) (metersim.Result, error) {
			return b.rig.Meter.SignIn(ctx, s)
		})
		if ok && res.Identity.DriverLicence != "" {
			b.shift.Driver = res.Identity.DriverLicence // the driver the agent named in its answer
		}
		return msg, nil
	case SignOut:
		if b.shift == nil {
			return "", fmt.Errorf("no driver is signed in; sign one in first: %w", ErrRefused)
		}
		s := *b.shift
		s.End = now()
		b.shift = nil
		msg, _, _ := b.meter("sign-out of driver "+redact.Licence(s.Driver), func(ctx context.Context) (metersim.Result, error) {
			return b.rig.Meter.SignOut(ctx, s)
		})
		return msg, nil
	case EndpointDown:
		if err := srv.Stop(); err != nil {
			return "", err
		}
		b.say("wechat", "DOWN: connections to %s are refused", srv.URL())
		return "endpoint down: connections are refused until `endpoint up`", nil
	case EndpointUp:
		if err := srv.Start(); err != nil && !errors.Is(err, punchsim.ErrRunning) {
			return "", err
		}
		b.say("wechat", "UP again at %s", srv.URL())
		return "endpoint up at " + srv.URL(), nil
	case EndpointReject:
		srv.Inject(punchsim.Fault{Kind: punchsim.BadRequest})
		b.say("wechat", "the next valid punch will be answered 400 PARAM_ERROR")
		return "the next valid punch will be answered 400 PARAM_ERROR; the agent dead-letters it", nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownAction, string(a))
}

// meter hands an exchange to the meter and waits up to answerWait for it
// to end; ok is false if it has not.
func (b *bench) meter(what string, do func(ctx context.Context) (metersim.Result, error)) (msg string, res metersim.Result, ok bool) {
	j := meterJob{what: what, do: do, done: make(chan metersim.Result, 1)}
	b.say("meter", "%s", what)
	select {
	case b.sends <- j:
	case <-b.meterCtx.Done():
		return what + ": the bench is stopping", res, false
	}
	select {
	case res = <-j.done:
		return what + ": " + describeResult(res), res, true
	case <-time.After(answerWait):
		return what + ": no answer from the agent yet (is `run` running?); the meter keeps re-sending", res, false
	}
}

// describeResult words how a sign-in or sign-out went: the request that
// asks the agent who drives, then the report.
func describeResult(res metersim.Result) string {
	var s string
	if r := res.Request; r != nil {
		s = fmt.Sprintf("the agent answered the request (%s) after %d send(s); ", cmdName(r.Command), r.Sends)
	}
	if res.Answer == 0 {
		// A standard meter reports a sign-in once and waits for no answer.
		return s + fmt.Sprintf("the meter reported %s", cmdName(res.Command))
	}
	return s + fmt.Sprintf("the agent answered the report (%s) 0x%02X after %d send(s)", cmdName(res.Command), res.Answer, res.Sends)
}

// runMeter performs the meter's exchanges one at a time, as a meter does.
func (b *bench) runMeter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-b.sends:
			res, err := j.do(ctx)
			if err != nil {
				b.say("meter", "%s: %v", j.what, err)
				continue
			}
			b.say("meter", "%s: %s", j.what, describeResult(res))
			j.done <- res
		}
	}
}

// cmdName names a meter command with its number: "SIGN_IN 0x00E1".
func cmdName(c uint16) string { return fmt.Sprintf("%s 0x%04X", meter.CommandName(c), c) }

// removeStale removes a control socket no bench answers on.
func removeStale(sock string) error {
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", sock, err)
	}
	return nil
}

// now is the wall clock in UTC+8 to the second, as a meter keeps it.
func now() time.Time { return time.Now().In(stamp.Zone).Truncate(time.Second) }
