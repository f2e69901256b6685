package netwatch

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// syncDumps are the dumps that (re)build the tracker's state, in order: links
// first so that addresses and routes find their interface names.
var syncDumps = []uint16{unix.RTM_GETLINK, unix.RTM_GETADDR, unix.RTM_GETROUTE}

// loop is one Run of a Watcher over an open conn.
type loop struct {
	w *Watcher
	c conn
	t *tracker

	pending *Change // up change waiting out its jitter
	timer   *time.Timer

	lostLogged, decodeLogged bool
}

// received is what the reader goroutine hands the loop.
type received struct {
	msgs      []message
	decodeErr error // a message of the datagram could not be decoded and was skipped
	err       error // receive failed
}

// run syncs, then reads and applies notifications until ctx is done (nil)
// or the socket fails (the error).
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
	if err := l.sync(true); err != nil {
		return err
	}
	l.w.markReady()
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

// read receives and decodes notification datagrams until receive fails for
// good or the loop stops.
func (l *loop) read(recv chan<- received, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		raw, err := l.c.receive()
		r := received{err: err}
		for _, nm := range raw {
			m, ok, err := decode(nm)
			if err != nil && r.decodeErr == nil {
				r.decodeErr = err
			}
			if ok {
				r.msgs = append(r.msgs, m)
			}
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
		return l.resync()
	case r.err != nil:
		return r.err
	case r.decodeErr != nil && !l.decodeLogged:
		l.w.log.Warn("undecodable netlink message skipped", "error", r.decodeErr)
		l.decodeLogged = true
	}
	for _, m := range r.msgs {
		if c, ok := l.t.apply(m, false); ok {
			l.emit(c)
		}
	}
	return nil
}

// sync applies a dump of links, addresses and routes: silently for the
// baseline, else as changes, ending with what the dump no longer has.
func (l *loop) sync(baseline bool) error {
	for _, typ := range syncDumps {
		msgs, err := l.c.dump(typ)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if c, ok := l.t.apply(m, baseline); ok {
				l.emit(c)
			}
		}
	}
	if !baseline {
		for _, c := range l.t.sweep() {
			l.emit(c)
		}
	}
	return nil
}

// resync rebuilds the state with fresh dumps after notifications were lost.
// Differences surface as changes.
func (l *loop) resync() error {
	l.t.begin()
	return l.sync(false)
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
