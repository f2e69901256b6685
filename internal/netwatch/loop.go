package netwatch

import (
	"context"
	"errors"
	"time"
)

// syncDumps are the dumps that (re)build the tracker's state, in order: links
// first so that addresses and routes find their interface names.
var syncDumps = []uint16{rtmGetLink, rtmGetAddr, rtmGetRoute}

// loop is one Run of a Watcher over an open conn.
type loop struct {
	w *Watcher
	c conn
	t *tracker

	baseline bool     // dump replies update the state silently (first sync)
	dumps    []uint16 // dumps of this sync still to request
	seq      uint32   // sequence number of the dump in flight, 0 if none
	resync   bool     // resync once the dump in flight ends

	pending *Change // up change waiting out its jitter
	timer   *time.Timer

	lostLogged, parseLogged, dumpLogged bool
}

// received is what the reader goroutine hands the loop.
type received struct {
	msgs     []message
	parseErr error // the datagram was malformed after msgs
	err      error // receive failed
}

// run reads and applies messages until ctx is done (nil) or the socket
// fails (the error).
func (l *loop) run(ctx context.Context) error {
	recv := make(chan received)
	stop := make(chan struct{}) // the loop has returned
	done := make(chan struct{}) // the reader has returned
	go l.read(recv, stop, done)
	defer func() {
		close(stop)
		l.c.close()
		<-done
		if l.timer != nil {
			l.timer.Stop()
		}
	}()
	l.t.begin()
	if err := l.startSync(); err != nil {
		return err
	}
	for {
		var timerC <-chan time.Time
		if l.timer != nil {
			timerC = l.timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timerC:
			l.timer = nil
			l.fire()
		case r := <-recv:
			if err := l.handleReceived(r); err != nil {
				return err
			}
		}
	}
}

// read receives and parses datagrams until receive fails for good or the
// loop stops.
func (l *loop) read(recv chan<- received, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		b, err := l.c.receive()
		var r received
		if err != nil {
			r.err = err
		} else {
			r.msgs, r.parseErr = parseMessages(b)
		}
		select {
		case recv <- r:
		case <-stop:
			return
		}
		if err != nil && !errors.Is(err, errLost) {
			return
		}
	}
}

func (l *loop) handleReceived(r received) error {
	switch {
	case errors.Is(r.err, errLost):
		if !l.lostLogged {
			l.w.log.Warn("netlink notifications lost, resynchronising", "error", r.err)
			l.lostLogged = true
		}
		return l.requestResync()
	case r.err != nil:
		return r.err
	case r.parseErr != nil && !l.parseLogged:
		l.w.log.Warn("malformed netlink datagram, rest skipped", "error", r.parseErr)
		l.parseLogged = true
	}
	for _, m := range r.msgs {
		if err := l.handle(m); err != nil {
			return err
		}
	}
	return nil
}

// handle applies one message: a reply to our dump, or a notification.
func (l *loop) handle(m message) error {
	if m.Pid == l.c.port() {
		if m.Seq != l.seq || l.seq == 0 {
			return nil // reply to an abandoned dump
		}
		switch m.Type {
		case nlmsgError:
			if m.Errno != 0 && !l.dumpLogged {
				l.w.log.Warn("netlink dump refused", "errno", -m.Errno)
				l.dumpLogged = true
			}
			return l.nextDump()
		case nlmsgDone:
			return l.nextDump()
		}
		if c, ok := l.t.apply(m, l.baseline); ok {
			l.emit(c)
		}
		return nil
	}
	if c, ok := l.t.apply(m, false); ok {
		l.emit(c)
	}
	return nil
}

func (l *loop) startSync() error {
	l.dumps = syncDumps
	return l.nextDump()
}

// nextDump requests the next dump of the sync, or ends the sync.
func (l *loop) nextDump() error {
	if len(l.dumps) == 0 {
		l.seq = 0
		return l.endSync()
	}
	l.seq++
	if l.seq == 0 {
		l.seq = 1
	}
	typ := l.dumps[0]
	l.dumps = l.dumps[1:]
	return l.c.send(dumpRequest(typ, l.seq))
}

// endSync applies the end of a sync, and starts a resync wanted meanwhile.
func (l *loop) endSync() error {
	if !l.baseline {
		for _, c := range l.t.sweep() {
			l.emit(c)
		}
	}
	l.baseline = false
	l.w.markReady()
	if l.resync {
		l.resync = false
		return l.requestResync() // no dump in flight: starts at once
	}
	return nil
}

// requestResync rebuilds the state with fresh dumps after notifications
// were lost, now or once the dump in flight ends. Differences surface as
// changes.
func (l *loop) requestResync() error {
	if l.seq != 0 {
		l.resync = true
		return nil
	}
	l.t.begin()
	return l.startSync()
}

// emit records a change, reports it, and schedules OnUp for an up change.
func (l *loop) emit(c change) {
	ch := Change{At: l.w.opts.Now(), Kind: c.kind, Interface: c.iface, Up: isUp(c.kind)}
	l.w.record(ch)
	l.w.log.Debug("network change", "kind", ch.Kind, "interface", ch.Interface)
	if l.w.opts.OnChange != nil {
		l.w.opts.OnChange(ch)
	}
	if !ch.Up || l.w.opts.OnUp == nil || l.pending != nil {
		return
	}
	l.pending = &ch
	if d := l.w.jitter(); d > 0 {
		l.timer = time.NewTimer(d)
		return
	}
	l.fire()
}

// fire calls OnUp with the pending change.
func (l *loop) fire() {
	ch := *l.pending
	l.pending = nil
	l.w.log.Info("network up, waking", "kind", ch.Kind, "interface", ch.Interface)
	l.w.opts.OnUp(ch)
}
