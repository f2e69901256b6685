package rxstamp

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// pair is an accepted *Conn and the client's side of it.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := Listen(ln)
	if err := l.Err(); err != nil {
		if runtime.GOOS == "linux" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn), client
}

// TestReceivedIsWhenTheDataArrived: data read 300 ms after it was sent
// carries the time it was sent, not the time it was read.
func TestReceivedIsWhenTheDataArrived(t *testing.T) {
	c, client := pair(t)
	if !c.Received().IsZero() {
		t.Fatalf("Received before any data = %v, want zero", c.Received())
	}
	for round := range 3 {
		before := time.Now()
		if _, err := client.Write([]byte("punch")); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		time.Sleep(300 * time.Millisecond)
		read := time.Now()
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "punch" {
			t.Fatalf("round %d: read %q, %v", round, buf[:n], err)
		}
		got := c.Received()
		// The kernel's clock and time.Now are the same CLOCK_REALTIME;
		// allow a millisecond for the two reads of it.
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Errorf("round %d: received at %v, want within the write [%v, %v] (read at %v)", round, got, before, after, read)
		}
		if Received(c) != got {
			t.Errorf("Received(conn) = %v, want %v", Received(c), got)
		}
	}
}

// TestReadKeepsTCPSemantics: deadlines time out as net.Error, EOF is
// io.EOF, and Close unblocks a read.
func TestReadKeepsTCPSemantics(t *testing.T) {
	c, client := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 4))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if _, err := c.Read(make([]byte, 4)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}

	c2, _ := pair(t)
	done := make(chan error, 1)
	go func() { _, err := c2.Read(make([]byte, 4)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	c2.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed conn: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}
