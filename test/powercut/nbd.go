package powercut

// A test-only NBD server (the fixed-newstyle handshake and the baseline
// transmission commands of the NBD protocol, proto.md in the NBD
// project), serving a Disk to qemu's NBD client. The Go NBD libraries
// looked at do not fit: pojntfx/go-nbd advertises no flush and refuses
// NBD_CMD_FLUSH, which is the one command this model is about, and
// rclone/gonbdserver has been unmaintained since 2017 and is driven by
// its own config files and backends. What qemu needs is small.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
)

// NBD protocol constants.
const (
	nbdMagic        = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic     = 0x49484156454f5054 // "IHAVEOPT"
	nbdRepMagic     = 0x0003e889045565a9
	nbdReqMagic     = 0x25609513
	nbdSimpleMagic  = 0x67446698
	nbdFixedNew     = 1 << 0 // handshake flags
	nbdNoZeroes     = 1 << 1
	nbdOptExport    = 1 // NBD_OPT_EXPORT_NAME
	nbdOptAbort     = 2
	nbdOptGo        = 7
	nbdRepAck       = 1
	nbdRepInfo      = 3
	nbdRepErrUnsup  = 1<<31 + 1
	nbdInfoExport   = 0
	nbdFlagHasFlags = 1 << 0 // transmission flags
	nbdFlagFlush    = 1 << 2
	nbdFlagFUA      = 1 << 3
	nbdCmdRead      = 0
	nbdCmdWrite     = 1
	nbdCmdDisc      = 2
	nbdCmdFlush     = 3
	nbdCmdFlagFUA   = 1 << 0
	nbdEINVAL       = 22
	nbdEIO          = 5
)

// errAbort is a client that ended the handshake without an export.
var errAbort = errors.New("nbd: client aborted the handshake")

// NBDServer serves one Disk on a listener, one connection at a time in
// practice (one VM).
type NBDServer struct {
	Disk *Disk
	ln   net.Listener

	mu    sync.Mutex
	conns map[net.Conn]chan struct{} // closed when the connection's handler returns
	errs  []error
}

// ServeNBD serves d on ln until ln is closed.
func ServeNBD(ln net.Listener, d *Disk) *NBDServer {
	s := &NBDServer{Disk: d, ln: ln, conns: map[net.Conn]chan struct{}{}}
	go s.accept()
	return s
}

func (s *NBDServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		done := make(chan struct{})
		s.mu.Lock()
		s.conns[c] = done
		s.mu.Unlock()
		go func() {
			defer close(done)
			err := s.serve(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			// A killed qemu ends its connection any of these ways.
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) &&
				!errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				s.errs = append(s.errs, err)
			}
			s.mu.Unlock()
		}()
	}
}

// Disconnect closes every connection and waits until their handlers have
// returned: no request of a killed VM still in the socket reaches the disk
// after it.
func (s *NBDServer) Disconnect() {
	s.mu.Lock()
	var wait []chan struct{}
	for c, done := range s.conns {
		c.Close()
		wait = append(wait, done)
	}
	s.mu.Unlock()
	for _, w := range wait {
		<-w
	}
}

// Errors returns the protocol errors seen (not the ends of connections).
func (s *NBDServer) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// Close stops accepting and disconnects.
func (s *NBDServer) Close() error {
	err := s.ln.Close()
	s.Disconnect()
	return err
}

func (s *NBDServer) serve(c net.Conn) error {
	if err := s.handshake(c); err != nil {
		if errors.Is(err, errAbort) {
			return nil
		}
		return err
	}
	be := binary.BigEndian
	var hdr [28]byte
	buf := make([]byte, 0, 1<<20)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return err
		}
		if be.Uint32(hdr[0:]) != nbdReqMagic {
			return fmt.Errorf("nbd: bad request magic %#x", be.Uint32(hdr[0:]))
		}
		flags, typ := be.Uint16(hdr[4:]), be.Uint16(hdr[6:])
		handle, off, n := be.Uint64(hdr[8:]), int64(be.Uint64(hdr[16:])), be.Uint32(hdr[24:])
		var errno uint32
		var data []byte
		switch typ {
		case nbdCmdRead:
			buf = growTo(buf, int(n))
			if _, err := s.Disk.ReadAt(buf, off); err != nil {
				errno = nbdEINVAL
			} else {
				data = buf
			}
		case nbdCmdWrite:
			buf = growTo(buf, int(n))
			if _, err := io.ReadFull(c, buf); err != nil {
				return err
			}
			if err := s.Disk.WriteAt(buf, off, flags&nbdCmdFlagFUA != 0); err != nil {
				errno = nbdEINVAL
			}
		case nbdCmdFlush:
			s.Disk.Flush()
		case nbdCmdDisc:
			return nil
		default:
			errno = nbdEINVAL
		}
		var rep [16]byte
		be.PutUint32(rep[0:], nbdSimpleMagic)
		be.PutUint32(rep[4:], errno)
		be.PutUint64(rep[8:], handle)
		if _, err := c.Write(append(rep[:], data...)); err != nil {
			return err
		}
	}
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// handshake runs the fixed-newstyle negotiation up to the transmission
// phase: NBD_OPT_GO or NBD_OPT_EXPORT_NAME for the one (unnamed) export;
// every other option is answered unsupported.
func (s *NBDServer) handshake(c net.Conn) error {
	be := binary.BigEndian
	var hello [18]byte
	be.PutUint64(hello[0:], nbdMagic)
	be.PutUint64(hello[8:], nbdOptMagic)
	be.PutUint16(hello[16:], nbdFixedNew|nbdNoZeroes)
	if _, err := c.Write(hello[:]); err != nil {
		return err
	}
	var cflags [4]byte
	if _, err := io.ReadFull(c, cflags[:]); err != nil {
		return err
	}
	noZeroes := be.Uint32(cflags[:])&nbdNoZeroes != 0
	export := make([]byte, 10)
	be.PutUint64(export[0:], uint64(s.Disk.Size()))
	be.PutUint16(export[8:], nbdFlagHasFlags|nbdFlagFlush|nbdFlagFUA)
	for {
		var oh [16]byte
		if _, err := io.ReadFull(c, oh[:]); err != nil {
			return err
		}
		if be.Uint64(oh[0:]) != nbdOptMagic {
			return fmt.Errorf("nbd: bad option magic %#x", be.Uint64(oh[0:]))
		}
		opt, n := be.Uint32(oh[8:]), be.Uint32(oh[12:])
		if n > 1<<16 {
			return fmt.Errorf("nbd: option %d of %d bytes", opt, n)
		}
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil { // the export name and info requests: one export
			return err
		}
		switch opt {
		case nbdOptExport:
			if !noZeroes {
				export = append(export, make([]byte, 124)...)
			}
			_, err := c.Write(export)
			return err
		case nbdOptGo:
			info := append([]byte{0, nbdInfoExport}, export...)
			if err := optReply(c, opt, nbdRepInfo, info); err != nil {
				return err
			}
			return optReply(c, opt, nbdRepAck, nil)
		case nbdOptAbort:
			_ = optReply(c, opt, nbdRepAck, nil)
			return errAbort
		default:
			if err := optReply(c, opt, nbdRepErrUnsup, nil); err != nil {
				return err
			}
		}
	}
}

func optReply(w io.Writer, opt, typ uint32, data []byte) error {
	be := binary.BigEndian
	var h [20]byte
	be.PutUint64(h[0:], nbdRepMagic)
	be.PutUint32(h[8:], opt)
	be.PutUint32(h[12:], typ)
	be.PutUint32(h[16:], uint32(len(data)))
	_, err := w.Write(append(h[:], data...))
	return err
}
