package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/uploader"
)

// terminal is one simulated vehicle: its outbox file and its uploader.
type terminal struct {
	box *outbox.Outbox
	up  *uploader.Uploader
	ran chan error
}

// newTerminal opens terminal i's outbox in dir, queues events sign-ins
// and sign-outs, and builds its uploader (not yet running). The caller
// closes the outbox.
func newTerminal(dir string, i, events int, cfg uploader.Config, auth uploader.Authenticator, clock *simClock) (*terminal, error) {
	box, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Now: clock.Now})
	if err != nil {
		return nil, fmt.Errorf("terminal %d: %w", i, err)
	}
	plate := fmt.Sprintf("粤B%05d", i)
	licence := fmt.Sprintf("44030019880906%04dX", i)
	for k := range events {
		at := clock.Now().Add(time.Duration(k-events) * time.Minute)
		typ := punch.SignIn
		if k%2 == 1 {
			typ = punch.SignOut
		}
		_, _, err := box.Enqueue(outbox.Record{
			Event: punch.Event{
				Type: typ, DriverLicense: licence, PlateNumber: plate, RegionID: 440300,
				EventTime: at.In(utc8).Format(outbox.EventTimeLayout),
			},
			Identity:   fmt.Sprintf("%s|%s|%d", typ, licence, k),
			ReceivedAt: at,
			MeterTime:  at.Truncate(time.Minute),
		})
		if err != nil {
			box.Close()
			return nil, fmt.Errorf("terminal %d: enqueue: %w", i, err)
		}
	}
	cfg.Rand = rand.New(rand.NewPCG(uint64(i), 0x7a71))
	up, err := uploader.New(cfg, box, auth)
	if err != nil {
		box.Close()
		return nil, fmt.Errorf("terminal %d: %w", i, err)
	}
	return &terminal{box: box, up: up, ran: make(chan error, 1)}, nil
}

var utc8 = time.FixedZone("UTC+8", 8*60*60)

// run starts the drain loop until ctx ends.
func (tm *terminal) run(ctx context.Context) {
	go func() { tm.ran <- tm.up.Run(ctx) }()
}

// discardLogger drops the uploaders' logs: 10 000 deliveries would bury the
// figures.
var discardLogger = slog.New(slog.DiscardHandler)
