package simrig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// ControlSocket is the control socket's name inside the bench directory.
const ControlSocket = "sim.sock"

// controlTimeout bounds one control exchange: the longest an action waits
// for the meter's answer, plus margin.
const controlTimeout = answerWait + 5*time.Second

// Control asks the bench running in dir to do a, and writes what happened
// to out. It fails with ErrNoBench when no bench answers, and with an
// error wrapping ErrRefused when the bench refused.
func Control(ctx context.Context, dir string, a Action, out io.Writer) error {
	sock := filepath.Join(dir, ControlSocket)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("%w in %s (start one with: sim -dir %s): %w", ErrNoBench, dir, dir, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout))
	if _, err := fmt.Fprintf(c, "%s\n", a); err != nil {
		return fmt.Errorf("send action: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return fmt.Errorf("%s: %w", msg, ErrRefused)
	}
	fmt.Fprintln(out, strings.TrimPrefix(line, "ok: "))
	return nil
}

// serveControl answers control connections on ln until it is closed.
func (b *bench) serveControl(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go b.answer(c)
	}
}

func (b *bench) answer(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	a, err := ParseAction(strings.Fields(line))
	var msg string
	if err == nil {
		msg, err = b.do(a)
	}
	if err != nil {
		fmt.Fprintf(c, "error: %s\n", strings.TrimSuffix(err.Error(), ": "+ErrRefused.Error()))
		return
	}
	fmt.Fprintf(c, "ok: %s\n", msg)
}

// listenControl listens on dir's control socket, replacing one left by a
// bench that did not stop cleanly, but not one that still answers.
func listenControl(dir string) (net.Listener, error) {
	sock := filepath.Join(dir, ControlSocket)
	ln, err := net.Listen("unix", sock)
	if err == nil {
		return ln, nil
	}
	if c, derr := net.Dial("unix", sock); derr == nil {
		c.Close()
		return nil, fmt.Errorf("listen on %s: another bench runs in %s", sock, dir)
	}
	if rerr := removeStale(sock); rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	if ln, err = net.Listen("unix", sock); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	return ln, nil
}
