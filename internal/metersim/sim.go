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
	// Dialect is the meter's make: its command words for sign-in and
	// sign-out, and whether it expects an answer to a sign-in. A meter
	// with Dialect.AnswerSignIn is the legacy kind that re-sends 0x00E1
	// until the agent answers 0x90; a standard meter reports it once.
	Dialect meter.Dialect
	// Echo makes the line hand back every byte the agent sends, like an
	// RS-485 adapter that keeps its receiver on while sending.
	Echo bool
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
	// or 0 if that send went unanswered (always 0 for a standard sign-in,
	// which is not answered). A heartbeat answer counts as 0x90.
	Answer byte
	// History is every result byte received, in order, e.g. [0xFF 0x90].
	History []byte
	// Sends is how many times the frame was sent, counting a sign-out's
	// 0x00F1 re-sends.
	Sends int
	// Data is the body of the last answer.
	Data []byte
	// Done is set when the exchange ended as the meter wanted: the agent
	// answered 0x90, or a standard meter reported its sign-in.
	Done bool
	// SentAt is when the report was last written to the line.
	SentAt time.Time
	// Request is the sign-in or sign-out request (0x00E0, 0x00E3) that
	// came before the report, if one was sent.
	Request *Result
	// Identity is who the meter signed in or out: the identity in the
	// agent's answer to the request, or the shift's own when the answer
	// carried none (a meter that reads the driver's card itself).
	Identity meter.Identity
}

// OK reports whether the exchange is done: answered 0x90, or a standard
// sign-in reported.
func (r Result) OK() bool { return r.Done }

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
	echoed        int
	refusals      int
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

// Echoed returns how many bytes an echoing line (Options.Echo) handed back.
func (m *Meter) Echoed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.echoed
}

// Refusals returns how many answers to the meter's frames were not 0x90
// (0xFF: not stored, or a request refused), over all exchanges so far,
// finished or not: a test can wait for the agent's first refusal without
// reading its logs.
func (m *Meter) Refusals() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refusals
}

// SendOption changes how a frame is sent.
type SendOption func(*sendConfig)

type sendConfig struct {
	resend    bool
	mode      byte
	hasMode   bool
	noRequest bool
}

// Resend makes SignOut send 关机当班营运数据补传 (0x00F1) at once, as a meter
// does with a sign-out it kept from an earlier shift; no request comes
// first.
func Resend(on bool) SendOption { return func(c *sendConfig) { c.resend = on } }

// Mode makes SignOut append the 签退方式 byte (0 normal, 1 forced), as
// some meters do.
func Mode(b byte) SendOption { return func(c *sendConfig) { c.mode, c.hasMode = b, true } }

// NoRequest skips the request (0x00E0 / 0x00E3) before the report: the
// report goes out with the shift's own identity.
func NoRequest() SendOption { return func(c *sendConfig) { c.noRequest = true } }

func sendOptions(opts []SendOption) sendConfig {
	var c sendConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// SignIn signs the shift's driver in as a standard meter does: it asks
// the terminal who is driving (0x00E0, flag 0x90) and waits for the
// answer, re-sending an unanswered request. A refusal (0xFF) ends the
// exchange with ErrRefused and no sign-in. Otherwise the meter signs in
// with the identity in the answer (the shift's own if the answer carries
// none) and reports 0x00E1 once, with the shift's result byte, and waits
// for nothing. A legacy meter (Dialect.AnswerSignIn) re-sends the report
// until the agent answers 0x90.
func (m *Meter) SignIn(ctx context.Context, s Shift, opts ...SendOption) (Result, error) {
	c := sendOptions(opts)
	var req *Result
	if !c.noRequest {
		r, id, err := m.request(ctx, meter.CmdSignInRequest, s)
		if err != nil {
			return Result{Command: m.opts.Dialect.Wire(meter.CmdSignIn), Request: &r}, err
		}
		req, s = &r, s.withIdentity(id)
	}
	f := m.vendor(s.SignInFrame())
	f.Command = m.opts.Dialect.Wire(meter.CmdSignIn)
	var res Result
	if m.opts.Dialect.AnswerSignIn {
		var err error
		if res, err = m.Send(ctx, f); err != nil {
			res.Request = req
			return res, err
		}
	} else {
		res = Result{Command: f.Command, Sends: 1, Done: true}
		m.drain()
		if err := m.write(meter.AppendFrame(nil, f)); err != nil {
			return res, err
		}
		res.SentAt = time.Now()
	}
	res.Request, res.Identity = req, s.identity()
	if s.result() == meter.ResultOK {
		m.setShift(s, true)
	}
	return res, nil
}

// SignOut signs the shift's driver out as a standard meter does: the
// request (0x00E3) first, as for SignIn, then the report (0x00E4). A
// report the agent does not answer 0x90 is sent again as 0x00F1 until it
// is. Resend(true) starts with 0x00F1 and sends no request.
func (m *Meter) SignOut(ctx context.Context, s Shift, opts ...SendOption) (Result, error) {
	c := sendOptions(opts)
	var req *Result
	if !c.noRequest && !c.resend {
		r, id, err := m.request(ctx, meter.CmdSignOutRequest, s)
		if err != nil {
			return Result{Command: m.opts.Dialect.Wire(meter.CmdSignOut), Request: &r}, err
		}
		req, s = &r, s.withIdentity(id)
	}
	f := s.SignOutFrame(c.resend)
	if c.hasMode {
		b := s.SignOutBody()
		b.HasMode, b.Mode = true, c.mode
		f.Data = b.Append(nil)
	}
	f = m.vendor(f)
	f.Command = m.opts.Dialect.Wire(f.Command)
	resend := m.vendor(f)
	resend.Command = m.opts.Dialect.Wire(meter.CmdSignOutResend)
	res, err := m.exchange(ctx, f, m.opts.MaxSends, lastByte, resend)
	res.Request, res.Identity = req, s.identity()
	if err == nil {
		m.setShift(s, false)
	}
	return res, err
}

// request asks who is driving and returns the answer and its identity;
// ErrRefused if the agent answered 0xFF.
func (m *Meter) request(ctx context.Context, cmd uint16, s Shift) (Result, meter.Identity, error) {
	res, err := m.exchange(ctx, m.vendor(s.requestFrame(cmd)), m.opts.MaxSends, lastByte, meter.Frame{}, stopOnRefusal)
	if err != nil {
		return res, meter.Identity{}, err
	}
	a, err := meter.ParseRequestAnswer(res.Data)
	if err != nil {
		return res, meter.Identity{}, fmt.Errorf("read answer to %s: %w", meter.CommandName(cmd), err)
	}
	return res, meter.Identity{CompanyLicence: a.CompanyLicence, DriverLicence: a.DriverLicence, Plate: a.Plate}, nil
}

// RequestSignIn sends 计价器开机 (0x00E0, flag 0x90) and re-sends it until
// the agent answers; Result.Data is the 57-byte answer. A refusal (0xFF)
// ends it with ErrRefused.
func (m *Meter) RequestSignIn(ctx context.Context, s Shift) (Result, error) {
	res, _, err := m.request(ctx, meter.CmdSignInRequest, s)
	return res, err
}

// RequestSignOut sends 计价器关机 (0x00E3), like RequestSignIn.
func (m *Meter) RequestSignOut(ctx context.Context, s Shift) (Result, error) {
	res, _, err := m.request(ctx, meter.CmdSignOutRequest, s)
	return res, err
}

// Heartbeat sends one heartbeat (0x00E9) and waits one answer timeout for
// the agent's answer; a heartbeat is not re-sent. It fails with
// ErrNoAnswer if none came.
func (m *Meter) Heartbeat(ctx context.Context, state meter.MeterState, s Shift) (Result, error) {
	return m.exchange(ctx, m.vendor(s.HeartbeatFrame(state)), 1, func([]byte) byte { return meter.ResultOK }, meter.Frame{})
}

// Send sends any frame and re-sends it until the agent answers with the
// same command and a body whose last byte is 0x90, as the answers to
// sign-in, sign-out and requests are.
func (m *Meter) Send(ctx context.Context, f meter.Frame) (Result, error) {
	return m.exchange(ctx, f, m.opts.MaxSends, lastByte, meter.Frame{})
}

// SendOnly writes a frame and does not wait: trip records, vendor
// commands and other frames the agent does not answer.
func (m *Meter) SendOnly(f meter.Frame) error {
	return m.write(meter.AppendFrame(nil, f))
}

func lastByte(data []byte) byte {
	if len(data) == 0 {
		return 0
	}
	return data[len(data)-1]
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

// stopOnRefusal ends an exchange at the first 0xFF instead of re-sending.
const stopOnRefusal = true

// exchange sends f up to maxSends times (0: unlimited) until result of
// an answer is 0x90. Sends after the first go out as then, if it has a
// command (a sign-out becomes 0x00F1). With stop set, a refusal ends it.
func (m *Meter) exchange(ctx context.Context, f meter.Frame, maxSends int, result func([]byte) byte, then meter.Frame, stop ...bool) (Result, error) {
	wire := meter.AppendFrame(nil, f)
	res := Result{Command: f.Command}
	for {
		if maxSends > 0 && res.Sends >= maxSends {
			why := ErrNoAnswer
			if res.Answer != 0 {
				why = ErrRefused
			}
			return res, fmt.Errorf("send %s %d times: %w", meter.CommandName(res.Command), res.Sends, why)
		}
		if then.Data != nil && res.Sends == 1 {
			res.Command, wire = then.Command, meter.AppendFrame(nil, then)
		}
		m.drain()
		if err := m.write(wire); err != nil {
			return res, err
		}
		res.Sends++
		res.SentAt = time.Now()
		ans, ok, err := m.await(ctx, res.Command)
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
			res.Done = true
			return res, nil
		}
		m.mu.Lock()
		m.refusals++
		m.mu.Unlock()
		if len(stop) > 0 && stop[0] {
			return res, fmt.Errorf("send %s: %w (0x%02X)", meter.CommandName(res.Command), ErrRefused, r)
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
		if n > 0 && m.opts.Echo {
			m.mu.Lock()
			m.echoed += n
			m.mu.Unlock()
			_ = m.write(buf[:n])
		}
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
