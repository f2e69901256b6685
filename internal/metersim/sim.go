package metersim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"taxi-agent/internal/meter"
)

// Options tune the simulated meter.
type Options struct {
	// AnswerTimeout is how long the meter waits for the agent's answer
	// before it re-sends. 0 means 1 s.
	AnswerTimeout time.Duration
	// MaxSends caps the sends of one frame; 0 means unlimited (until the
	// context ends), like a real meter.
	MaxSends int
	// RetryDelay is the pause after a refusal (0xFF) before re-sending.
	// 0 means AnswerTimeout/4.
	RetryDelay time.Duration
	// Vendor is the vendor byte of the frames the meter sends.
	Vendor byte
	// Status is the body the meter answers status queries with. Its
	// WorkState is kept up to date (signed in or out) by the simulator.
	// The zero value gets plausible version fields.
	Status meter.StatusReply
	// Seed seeds the noise generator; runs with the same seed inject the
	// same bytes.
	Seed uint64
}

// Result is how one exchange with the agent went.
type Result struct {
	Command uint16
	// Answer is the result byte that answered the last send: 0x90, 0xFF,
	// or 0 if that send went unanswered. A heartbeat answer counts as 0x90.
	Answer byte
	// History is every result byte received, in order, e.g. [0xFF 0x90].
	History []byte
	// Sends is how many times the frame was sent.
	Sends int
	// Data is the body of the last answer.
	Data []byte
}

// OK reports whether the agent answered 0x90.
func (r Result) OK() bool { return r.Answer == meter.ResultOK }

// Meter is a simulated taximeter on one end of a line. Its exchanges
// (SignIn, SignOut, …) are not for concurrent use: a meter has one frame
// in flight at a time. Status queries are answered in the background.
type Meter struct {
	rw   io.ReadWriter
	opts Options

	wmu sync.Mutex // serialises writes; guards rng
	rng *rand.Rand

	answers chan meter.Frame // the agent's frames other than status queries
	done    chan struct{}    // closed when the reader stops
	readErr error            // why the reader stopped; read after done

	mu            sync.Mutex
	statusQueries int
	badBytes      int
	signedIn      bool
	shift         Shift
}

// New starts a simulated meter on rw (the master of a PTY, say). It reads
// rw in a goroutine until a read fails: close rw, or call Close, to stop it.
func New(rw io.ReadWriter, o Options) *Meter {
	if o.AnswerTimeout <= 0 {
		o.AnswerTimeout = time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = o.AnswerTimeout / 4
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Status == (meter.StatusReply{}) {
		o.Status = meter.StatusReply{VendorCode: 0x01, DeviceType: meter.DeviceMeter, Serial: 100001,
			HardwareVer: 0x10, SoftwareMajor: 0x02, SoftwareMinor: 0x05, WorkState: 0x01}
	}
	m := &Meter{
		rw: rw, opts: o,
		rng:     rand.New(rand.NewPCG(o.Seed, o.Seed^0x9E3779B97F4A7C15)),
		answers: make(chan meter.Frame, 64),
		done:    make(chan struct{}),
	}
	go m.read()
	return m
}

// Close closes the line if it is an io.Closer and waits for the reader to
// stop.
func (m *Meter) Close() error {
	var err error
	if c, ok := m.rw.(io.Closer); ok {
		err = c.Close()
	}
	<-m.done
	return err
}

// Done is closed when the meter's reader has stopped (the line closed).
func (m *Meter) Done() <-chan struct{} { return m.done }

// StatusQueries returns how many status queries the meter has answered.
func (m *Meter) StatusQueries() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusQueries
}

// BadBytes returns how many bytes from the agent did not decode as frames.
func (m *Meter) BadBytes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.badBytes
}

// SendOption changes how a frame is sent.
type SendOption func(*sendConfig)

type sendConfig struct {
	resend  bool
	mode    byte
	hasMode bool
}

// Resend makes SignOut send 关机当班营运数据补传 (0x00F1) instead of 0x00E4.
func Resend(on bool) SendOption { return func(c *sendConfig) { c.resend = on } }

// Mode makes SignOut append the 签退方式 byte (0 normal, 1 forced), as
// some meters do.
func Mode(b byte) SendOption { return func(c *sendConfig) { c.mode, c.hasMode = b, true } }

// SignIn reports the shift's sign-in (0x00E1) and re-sends it until the
// agent answers 0x90. No SendOption applies to a sign-in yet; they are
// accepted for symmetry with SignOut.
func (m *Meter) SignIn(ctx context.Context, s Shift, _ ...SendOption) (Result, error) {
	res, err := m.Send(ctx, m.vendor(s.SignInFrame()))
	if err == nil {
		m.setShift(s, true)
	}
	return res, err
}

// SignOut reports the shift's sign-out (0x00E4, or 0x00F1 with
// Resend(true)) and re-sends it until the agent answers 0x90.
func (m *Meter) SignOut(ctx context.Context, s Shift, opts ...SendOption) (Result, error) {
	var c sendConfig
	for _, o := range opts {
		o(&c)
	}
	f := s.SignOutFrame(c.resend)
	if c.hasMode {
		b := s.SignOutBody()
		b.HasMode, b.Mode = true, c.mode
		f.Data = b.Append(nil)
	}
	res, err := m.Send(ctx, m.vendor(f))
	if err == nil {
		m.setShift(s, false)
	}
	return res, err
}

// RequestSignIn sends 计价器开机 (0x00E0) and re-sends it until the agent's
// answer carries result 0x90; Result.Data is the 57-byte answer.
func (m *Meter) RequestSignIn(ctx context.Context, s Shift) (Result, error) {
	return m.Send(ctx, m.vendor(s.requestFrame(meter.CmdSignInRequest)))
}

// RequestSignOut sends 计价器关机 (0x00E3), like RequestSignIn.
func (m *Meter) RequestSignOut(ctx context.Context, s Shift) (Result, error) {
	return m.Send(ctx, m.vendor(s.requestFrame(meter.CmdSignOutRequest)))
}

// Heartbeat sends one heartbeat (0x00E9) and waits one answer timeout for
// the agent's answer; a heartbeat is not re-sent. It fails with
// ErrNoAnswer if none came.
func (m *Meter) Heartbeat(ctx context.Context, state meter.MeterState, s Shift) (Result, error) {
	return m.exchange(ctx, m.vendor(s.HeartbeatFrame(state)), 1, func([]byte) byte { return meter.ResultOK })
}

// Send sends any frame and re-sends it until the agent answers with the
// same command and a body whose last byte is 0x90, as the answers to
// sign-in, sign-out and requests are.
func (m *Meter) Send(ctx context.Context, f meter.Frame) (Result, error) {
	return m.exchange(ctx, f, m.opts.MaxSends, func(data []byte) byte {
		if len(data) == 0 {
			return 0
		}
		return data[len(data)-1]
	})
}

// SendOnly writes a frame and does not wait: trip records, vendor
// commands and other frames the agent does not answer.
func (m *Meter) SendOnly(f meter.Frame) error {
	return m.write(meter.AppendFrame(nil, f))
}

func (m *Meter) vendor(f meter.Frame) meter.Frame {
	f.Vendor = m.opts.Vendor
	return f
}

func (m *Meter) setShift(s Shift, signedIn bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shift, m.signedIn = s, signedIn
}

// exchange sends f up to maxSends times (0: unlimited) until result of
// an answer is 0x90.
func (m *Meter) exchange(ctx context.Context, f meter.Frame, maxSends int, result func([]byte) byte) (Result, error) {
	wire := meter.AppendFrame(nil, f)
	res := Result{Command: f.Command}
	for {
		if maxSends > 0 && res.Sends >= maxSends {
			why := ErrNoAnswer
			if res.Answer != 0 {
				why = ErrRefused
			}
			return res, fmt.Errorf("send %s %d times: %w", meter.CommandName(f.Command), res.Sends, why)
		}
		m.drain()
		if err := m.write(wire); err != nil {
			return res, err
		}
		res.Sends++
		ans, ok, err := m.await(ctx, f.Command)
		if err != nil {
			return res, err
		}
		if !ok {
			res.Answer = 0 // this send went unanswered
			continue
		}
		r := result(ans.Data)
		res.Answer, res.Data = r, ans.Data
		res.History = append(res.History, r)
		if r == meter.ResultOK {
			return res, nil
		}
		if maxSends > 0 && res.Sends >= maxSends {
			continue // give up at the top of the loop, without waiting
		}
		if err := sleep(ctx, m.opts.RetryDelay); err != nil {
			return res, err
		}
	}
}

// drain discards answers that arrived late for an earlier send.
func (m *Meter) drain() {
	for {
		select {
		case <-m.answers:
		default:
			return
		}
	}
}

// await waits one answer timeout for a frame with command cmd. ok is false
// on timeout.
func (m *Meter) await(ctx context.Context, cmd uint16) (f meter.Frame, ok bool, err error) {
	t := time.NewTimer(m.opts.AnswerTimeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return meter.Frame{}, false, ctx.Err()
		case <-m.done:
			return meter.Frame{}, false, fmt.Errorf("wait for answer: %w: %v", ErrLineClosed, m.readErr)
		case <-t.C:
			return meter.Frame{}, false, nil
		case f := <-m.answers:
			if f.Command == cmd {
				return f, true, nil
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (m *Meter) write(p []byte) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if _, err := m.rw.Write(p); err != nil {
		return fmt.Errorf("write to agent: %w", err)
	}
	return nil
}

// read decodes the agent's frames: status queries are answered here,
// everything else goes to the exchange waiting for it.
func (m *Meter) read() {
	defer close(m.done)
	var d meter.Decoder
	buf := make([]byte, 1024)
	for {
		n, err := m.rw.Read(buf)
		if n > 0 {
			d.Write(buf[:n])
			m.decode(&d)
		}
		if err != nil {
			m.readErr = err
			return
		}
		if n == 0 {
			time.Sleep(10 * time.Millisecond) // a reader that returns 0, nil: do not spin
		}
	}
}

func (m *Meter) decode(d *meter.Decoder) {
	for {
		f, err := d.Next()
		switch {
		case err == meter.ErrNeedMore:
			return
		case err != nil:
			m.mu.Lock()
			m.badBytes += len(d.Last())
			m.mu.Unlock()
		case f.Command == meter.CmdStatus:
			m.answerStatus()
		default:
			f.Data = bytes.Clone(f.Data)
			select {
			case m.answers <- f:
			default: // nobody is waiting and the queue is full: a meter forgets
			}
		}
	}
}

func (m *Meter) answerStatus() {
	m.mu.Lock()
	m.statusQueries++
	st := m.opts.Status
	if m.signedIn {
		st.WorkState = 0x00
		st.Plate, st.CompanyLicence, st.DriverLicence = m.shift.plate(), m.shift.company(), m.shift.Driver
		st.TotalTrips = m.shift.Trips
	}
	m.mu.Unlock()
	_ = m.write(meter.AppendFrame(nil, meter.Frame{Device: meter.DeviceMeter, Vendor: m.opts.Vendor, Command: meter.CmdStatus, Data: st.Append(nil)}))
}
