// Package daemon assembles the agent: the meter link feeds stamped events
// into the outbox, the uploader drains the outbox to WeChat Pay, the admin
// socket serves the technician, and systemd is told when the agent is ready
// and alive. `agent run` and `agent demo` both run this pipeline.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/config"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/redact"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/uploader"
	"taxi-agent/internal/version"
	"taxi-agent/internal/wechatpay"
)

// Options are what Run needs beyond the config.
type Options struct {
	Config config.Config
	Logger *slog.Logger
	// Clock defaults to the system clock trusted after the build time.
	Clock *stamp.Clock
	// OpenPort defaults to the serial device from the config; the demo and
	// tests hand in a pseudo-terminal.
	OpenPort func() (io.ReadWriteCloser, error)
	// Notify is called with systemd notify states ("READY=1",
	// "WATCHDOG=1", "STOPPING=1"); nil means no systemd.
	Notify func(state string)
	// WatchdogInterval is how often WATCHDOG=1 is sent; zero disables it.
	WatchdogInterval time.Duration
	// Ready, if set, is called once the agent is ready, with the daemon.
	Ready func(*Daemon)
	// RuntimeDir, if set, is a directory that outlives the agent's
	// process but not the terminal's power, on a file system other than
	// the outbox's: systemd's RuntimeDirectory= (tmpfs), which the unit
	// keeps across restarts. Held events get a second spill file there
	// (RuntimeSpillPath), so that a watchdog restart while the outbox's
	// disk is stuck does not lose them.
	RuntimeDir string
}

// RuntimeSpillPath is the spill file in runtimeDir for the outbox at
// outboxPath, or "" when runtimeDir is empty or the same directory as the
// outbox's.
func RuntimeSpillPath(outboxPath, runtimeDir string) string {
	if runtimeDir == "" || filepath.Clean(runtimeDir) == filepath.Dir(filepath.Clean(outboxPath)) {
		return ""
	}
	return filepath.Join(runtimeDir, filepath.Base(outboxPath)+SpillSuffix)
}

// Daemon is a running agent.
type Daemon struct {
	cfg      config.Config
	log      *slog.Logger
	clock    *stamp.Clock
	outbox   *outbox.Outbox
	link     *meter.Link
	uploader *uploader.Uploader
	conn     *connectivity
	held     *heldQueue
	started  time.Time
	// server is WeChat Pay's time as learned from verified answers.
	server *wechatpay.ServerClock

	plateOnce sync.Once
}

// Run runs the agent until ctx is cancelled, then drains within the
// configured deadline and closes the outbox. It returns nil after a clean
// shutdown.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := opts.Clock
	if clock == nil {
		clock = stamp.System(version.TrustedAfter())
	}
	notify := opts.Notify
	if notify == nil {
		notify = func(string) {}
	}

	ob, err := outbox.Open(cfg.Outbox.Path, outbox.Options{
		LockTimeout:   2 * time.Second,
		MaxSize:       cfg.Outbox.MaxSizeMiB << 20,
		Retention:     cfg.Outbox.Retention,
		CommitTimeout: cfg.Outbox.CommitTimeout,
		Logger:        log,
	})
	if err != nil {
		return err // already "open outbox <path>: …"
	}
	if q := ob.Quarantined(); q != nil {
		log.Error("outbox file was corrupt and has been moved aside; a fresh outbox was started", "err", q)
	}
	d := &Daemon{cfg: cfg, log: log, clock: clock, outbox: ob, started: time.Now(), server: wechatpay.NewServerClock(nil, nil)}
	// Events an earlier run held are stored before the meter link opens,
	// ahead of anything new.
	spills := []string{cfg.Outbox.Path + SpillSuffix}
	if p := RuntimeSpillPath(cfg.Outbox.Path, opts.RuntimeDir); p != "" {
		spills = append(spills, p)
	}
	d.held, err = newHeldQueue(d.enqueue, DefaultStoreWait, log.With("component", "outbox"), spills...)
	if err != nil {
		ob.Close()
		return err
	}
	d.held.flush()

	auth, err := newAuth(cfg, d.server, log)
	if err != nil {
		ob.Close()
		return fmt.Errorf("load keys: %w", err)
	}
	d.uploader, err = uploader.New(uploaderConfig(cfg, clock, log), ob, auth)
	if err != nil {
		ob.Close()
		return fmt.Errorf("start uploader: %w", err)
	}

	openPort := opts.OpenPort
	if openPort == nil {
		pc := portConfig(cfg.Meter)
		openPort = func() (io.ReadWriteCloser, error) { return meter.OpenSerial(pc) }
	}
	lc := meter.LinkConfig{
		Open:    openPort,
		Handle:  d.meterHandler(),
		Dialect: dialect(cfg.Meter),
		Device:  byte(cfg.Meter.DeviceType),
		Vendor:  byte(cfg.Meter.Vendor),
		Logger:  log.With("component", "meter"),
	}
	if cfg.Meter.Identity == config.IdentityTerminal {
		lc.Identity = d.identity
	}
	d.link = meter.NewLink(lc)

	// The link and the uploader stop at different times: the link as soon
	// as we are told to stop (the meter re-sends what it was not answered),
	// the uploader after the in-flight upload, bounded by its grace.
	d.conn = newConnectivity(endpoint(cfg), d.uploader, log)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- d.link.Run(ctx) })
	wg.Go(func() { errs <- d.uploader.Run(ctx) })
	wg.Go(func() { d.conn.run(ctx) })
	adminLn := d.listenAdmin()
	wg.Go(func() { d.serveAdmin(ctx, adminLn) })
	wg.Go(func() { d.held.run(ctx, d.uploader.Wake) })

	sync := clock.SyncState()
	log.Info("agent started", "version", version.Get().Version, "plate", cfg.Vehicle.PlateNumber,
		"meter", cfg.Meter.Device, "identity", cfg.Meter.Identity, "outbox", cfg.Outbox.Path, "endpoint", endpoint(cfg),
		"clock_trusted", clock.Trusted(), "clock_synchronized", sync.Synchronized, "clock_sync_source", sync.Source)
	notify("READY=1")
	if opts.Ready != nil {
		opts.Ready(d)
	}
	if w := opts.WatchdogInterval; w > 0 && cfg.Outbox.CommitTimeout >= 2*w {
		log.Warn("outbox.commit_timeout is not under the unit's WatchdogSec: a slow commit gets the agent restarted before it is reported",
			"commit_timeout", cfg.Outbox.CommitTimeout, "watchdog_sec", 2*w)
	}
	wg.Go(func() { d.watchdog(ctx, opts.WatchdogInterval, notify) })

	<-ctx.Done()
	notify("STOPPING=1")
	log.Info("stopping: finishing the upload in flight", "deadline", cfg.Uploader.DrainTimeout)
	wg.Wait()
	d.held.drain()
	close(errs)
	var runErr error
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	if err := ob.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close outbox: %w", err))
	}
	if runErr == nil {
		log.Info("stopped cleanly")
	}
	return runErr
}

// watchdog pings systemd (every, zero: no pings) while the outbox still
// answers: a hung store, the one part whose failure loses events, stops
// the pings and systemd restarts the agent. It looks every second, or
// every if shorter: once a commit has been in flight for longer than
// outbox.commit_timeout (Outbox.StuckSince) it says so once and withholds
// the pings until the commit returns. It reads only memory: a read of the
// file can wait behind the stuck commit (bbolt's remap lock), and a
// watchdog blocked there could not say why the pings stopped.
func (d *Daemon) watchdog(ctx context.Context, every time.Duration, notify func(string)) {
	tick := time.Second
	if every > 0 {
		tick = min(every, tick)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var stuckSince time.Time
	var lastPing time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if since, stuck := d.outbox.StuckSince(); stuck {
			if stuckSince.IsZero() {
				stuckSince = since
				d.log.Error("storage stuck: an outbox commit has not returned within outbox.commit_timeout; "+
					"withholding the watchdog pings so that systemd restarts the agent",
					"since", since, "commit_timeout", d.cfg.Outbox.CommitTimeout, "watchdog", every > 0)
			}
			continue
		}
		if !stuckSince.IsZero() {
			d.log.Warn("storage answers again: the stuck commit returned; watchdog pings resume",
				"stuck_for", time.Since(stuckSince).Round(time.Millisecond))
			stuckSince = time.Time{}
		}
		if every <= 0 || !lastPing.IsZero() && time.Since(lastPing)+tick/2 < every {
			continue
		}
		notify("WATCHDOG=1")
		lastPing = time.Now()
	}
}

// Why a sign-in is stored dead rather than sent.
const deadNoLicence = "no driver licence from the meter"

// handle turns a meter event into a stored record. It returns nil only
// once the record is durable, so a sign-out is answered 0x90 only when
// stored, and it never waits on the outbox for longer than
// DefaultStoreWait. A sign-in the outbox refuses, or does not take in
// that time, is held (the meter will not send it again) and stored, ahead
// of any later event, as soon as the outbox accepts; the error then only
// tells a meter that expects an answer to wait.
func (d *Daemon) handle(_ context.Context, ev meter.Event) error {
	reading := d.clock.Read()
	resend := ev.Command == meter.CmdSignOutResend
	eventTime, source := d.clock.EventTime(reading, ev.MeterTime, resend)

	typ := punch.SignIn
	if ev.SignOut() {
		typ = punch.SignOut
	}
	d.checkPlate(ev.Plate)
	rec := outbox.Record{
		Event: punch.Event{
			Type:          typ,
			DriverLicense: ev.DriverLicence,
			PlateNumber:   d.cfg.Vehicle.PlateNumber,
			RegionID:      d.cfg.Vehicle.RegionID,
			EventTime:     eventTime,
		},
		Identity:   ev.Identity(),
		ReceivedAt: reading.Wall,
		MeterTime:  ev.MeterTime,
		BootID:     reading.BootID,
		Monotonic:  reading.Monotonic,
	}
	var dead string
	if typ == punch.SignIn && ev.DriverLicence == "" {
		dead = deadNoLicence
	}
	log := d.log.With("event_type", typ)
	if source == stamp.FromMeterSkew {
		log.Warn("wall clock not synchronised and more than an hour from the meter's; the meter's time is used",
			"wall_clock", reading.Wall, "meter_time", ev.MeterTime, "event_time", eventTime)
	}
	var (
		id  uint64
		dup bool
		err error
	)
	if typ == punch.SignIn {
		id, dup, err = d.held.submit(rec, dead, true)
	} else {
		// The open shift's licence fills a sign-out without one; it is
		// read after any held sign-in is stored, inside the queue's order.
		id, dup, err = d.held.submit(rec, "", false)
	}
	licence := rec.Event.DriverLicense
	log = log.With("driver_license", redact.LicenceValue(licence))
	if err != nil {
		log.Debug("could not store event", "err", err) // the link and the held queue log the first refusal and the recovery
		return err
	}
	if dup {
		log.Info("event already stored; re-sent frame acknowledged again", "id", id)
		return nil
	}
	if dead != "" {
		log.Error("sign-in without a driver licence stored dead, not sent (WeChat Pay would refuse it); check the meter's card reader or meter.identity",
			"id", id, "reason", dead)
		return nil
	}
	log.Info("event stored", "id", id, "event_time", eventTime, "time_source", string(source))
	d.uploader.Wake()
	return nil
}

// enqueue stores one record, dead with the given reason if there is one.
// A sign-out without a licence takes the open shift's, read here so that
// a sign-in stored just before it counts.
func (d *Daemon) enqueue(rec outbox.Record, deadReason string) (uint64, bool, error) {
	if rec.Event.Type == punch.SignOut && rec.Event.DriverLicense == "" {
		open, err := d.outbox.OpenShiftLicence()
		if err != nil {
			return 0, false, fmt.Errorf("look up open shift: %w", err)
		}
		rec.Event.DriverLicense = open
		if open == "" {
			d.log.Warn("sign-out carries no driver licence and no sign-in is open; WeChat Pay will likely reject it",
				"identity", rec.Identity)
		}
	}
	if deadReason != "" {
		return d.outbox.EnqueueDead(rec, deadReason)
	}
	return d.outbox.Enqueue(rec)
}

// identity is the driver the terminal set, for the meter's request
// (meter.identity = "terminal"); ok is false when none is set.
func (d *Daemon) identity() (meter.Identity, bool) {
	drv, ok, err := d.outbox.Driver()
	if err != nil {
		d.log.Error("read the driver for the meter's request; refused", "component", "meter", "err", err)
		return meter.Identity{}, false
	}
	if !ok {
		return meter.Identity{}, false
	}
	return meter.Identity{CompanyLicence: drv.Company, DriverLicence: drv.Licence, Plate: meter.PlateTail(d.cfg.Vehicle.PlateNumber)}, true
}

// checkPlate warns once when the meter's plate (no province character) does
// not match the configured plate.
func (d *Daemon) checkPlate(meterPlate string) {
	if meterPlate == "" {
		return
	}
	d.plateOnce.Do(func() {
		if !plateMatches(d.cfg.Vehicle.PlateNumber, meterPlate) {
			d.log.Warn("meter plate does not match vehicle.plate_number; the configured plate is sent",
				"meter_plate", meterPlate, "plate_number", d.cfg.Vehicle.PlateNumber)
		}
	})
}

// plateMatches reports whether the meter's 6 plate characters are the tail
// of the configured plate after its province character.
func plateMatches(configured, meterPlate string) bool {
	r := []rune(configured)
	if len(r) < 2 {
		return false
	}
	tail := string(r[1:])
	return tail == meterPlate || len(tail) > len(meterPlate) && tail[len(tail)-len(meterPlate):] == meterPlate
}

// Outbox is the daemon's open outbox (admin.Backend).
func (d *Daemon) Outbox() admin.OutboxStore { return d.outbox }

// Uploader is the daemon's drain loop.
func (d *Daemon) Uploader() *uploader.Uploader { return d.uploader }

// ServerClock is WeChat Pay's time as last learned from a verified answer
// (Wechatpay-Timestamp), carried forward on the boot clock; its Now reports
// ok=false until an answer has taught it.
func (d *Daemon) ServerClock() *wechatpay.ServerClock { return d.server }

// Link is the daemon's meter link.
func (d *Daemon) Link() *meter.Link { return d.link }
