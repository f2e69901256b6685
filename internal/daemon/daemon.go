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
	"sync"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/config"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/redact"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/uploader"
	"taxi-agent/internal/version"
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
	started  time.Time

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
		LockTimeout: 2 * time.Second,
		MaxSize:     cfg.Outbox.MaxSizeMiB << 20,
		Retention:   cfg.Outbox.Retention,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("open outbox: %w", err)
	}
	if q := ob.Quarantined(); q != nil {
		log.Error("outbox file was corrupt and has been moved aside; a fresh outbox was started", "err", q)
	}
	d := &Daemon{cfg: cfg, log: log, clock: clock, outbox: ob, started: time.Now()}

	auth, err := newAuth(cfg)
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
	d.link = meter.NewLink(meter.LinkConfig{
		Open:   openPort,
		Handle: d.handle,
		Device: byte(cfg.Meter.DeviceType),
		Vendor: byte(cfg.Meter.Vendor),
		Logger: log.With("component", "meter"),
	})

	// The link and the uploader stop at different times: the link as soon
	// as we are told to stop (the meter re-sends what it was not answered),
	// the uploader after the in-flight upload, bounded by its grace.
	d.conn = newConnectivity(endpoint(cfg), d.uploader, log)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- d.link.Run(ctx) })
	wg.Go(func() { errs <- d.uploader.Run(ctx) })
	wg.Go(func() { d.conn.run(ctx) })
	wg.Go(func() { d.serveAdmin(ctx) })

	log.Info("agent started", "version", version.Get().Version, "plate", cfg.Vehicle.PlateNumber,
		"meter", cfg.Meter.Device, "outbox", cfg.Outbox.Path, "endpoint", endpoint(cfg),
		"clock_trusted", clock.Trusted())
	notify("READY=1")
	if opts.Ready != nil {
		opts.Ready(d)
	}
	wg.Go(func() { d.watchdog(ctx, opts.WatchdogInterval, notify) })

	<-ctx.Done()
	notify("STOPPING=1")
	log.Info("stopping: finishing the upload in flight", "deadline", cfg.Uploader.DrainTimeout)
	wg.Wait()
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

// watchdog pings systemd while the outbox still answers: a hung store
// (the one part whose failure loses events) stops the pings and systemd
// restarts the agent.
func (d *Daemon) watchdog(ctx context.Context, every time.Duration, notify func(string)) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.outbox.Stats(); err != nil {
				d.log.Error("outbox does not answer; withholding the watchdog ping", "err", err)
				continue
			}
			notify("WATCHDOG=1")
		}
	}
}

// handle turns a meter event into a stored record. It returns only once the
// record is durable, so the meter is answered 0x90 only for stored events.
func (d *Daemon) handle(_ context.Context, ev meter.Event) error {
	reading := d.clock.Read()
	resend := ev.Command == meter.CmdSignOutResend
	eventTime, source := d.clock.EventTime(reading, ev.MeterTime, resend)

	typ := outbox.SignIn
	if ev.SignOut() {
		typ = outbox.SignOut
	}
	licence := ev.DriverLicence
	if licence == "" && ev.SignOut() {
		open, err := d.outbox.OpenShiftLicence()
		if err != nil {
			return fmt.Errorf("look up open shift: %w", err)
		}
		licence = open
	}
	d.checkPlate(ev.Plate)

	id, dup, err := d.outbox.Enqueue(outbox.Record{
		Event: outbox.Event{
			Type:          typ,
			DriverLicense: licence,
			PlateNumber:   d.cfg.Vehicle.PlateNumber,
			RegionID:      d.cfg.Vehicle.RegionID,
			EventTime:     eventTime,
		},
		Identity:   ev.Identity(),
		ReceivedAt: reading.Wall,
		MeterTime:  ev.MeterTime,
		BootID:     reading.BootID,
		Monotonic:  reading.Monotonic,
	})
	log := d.log.With("event_type", typ, "driver_license", redact.LicenceValue(licence))
	if err != nil {
		log.Debug("could not store event; the meter is told to re-send", "err", err) // the link logs the first refusal and the recovery
		return err
	}
	if dup {
		log.Info("event already stored; re-sent frame acknowledged again", "id", id)
		return nil
	}
	log.Info("event stored", "id", id, "event_time", eventTime, "time_source", string(source))
	if licence == "" {
		log.Warn("sign-out carries no driver licence and no sign-in is open; WeChat Pay will likely reject it", "id", id)
	}
	d.uploader.Wake()
	return nil
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

// Link is the daemon's meter link.
func (d *Daemon) Link() *meter.Link { return d.link }
