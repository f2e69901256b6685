package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/config"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/stamp"
	"taxi-agent/internal/testsupport"
)

// fillOutbox fills ob with pending events that wait for the clock (the
// terminal booted in 1970 and has no network time yet) until it refuses
// more, large ones first, and returns how many it took. The uploader
// leaves such events alone until the clock is set, so the outbox stays
// full until then.
func fillOutbox(t *testing.T, ob *outbox.Outbox) int {
	t.Helper()
	n, err := fillWith(ob.Enqueue)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fillWith fills an outbox through enqueue as fillOutbox does.
func fillWith(enqueue func(outbox.Record) (uint64, bool, error)) (int, error) {
	// Identities of 2 kB fill the file in a few hundred writes and still
	// fit a page, as the outbox's reserve for deliveries assumes (with
	// 30 kB ones a delivery at the bound found no room). They sort before
	// the small ones that fill the rest, among which real identities fall.
	pad := "A" + strings.Repeat("p", 2000)
	n, refusals := 0, 0
	for i := range 5000 {
		_, _, err := enqueue(outbox.Record{
			Event:    punch.Event{Type: punch.SignIn, DriverLicense: "11010519491231002X", PlateNumber: "粤B12345", RegionID: 440300},
			Identity: pad + "SIGN_IN|11010519491231002X|" + strconv.Itoa(i), ReceivedAt: time.Unix(60, 0), BootID: "boot-1", Monotonic: time.Minute,
		})
		switch {
		case errors.Is(err, outbox.ErrFull) && pad != "":
			pad = ""
		case errors.Is(err, outbox.ErrFull):
			if refusals++; refusals == 5 {
				return n, nil
			}
		case err != nil:
			return n, err
		default:
			n, refusals = n+1, 0
		}
	}
	return n, errors.New("a 1 MiB outbox took 5000 records")
}

// TestSignInKeptWhileOutboxRefuses: the outbox is full (a backlog waiting
// for the clock) when a sign-in arrives. The sign-in is not answered and
// not lost: status shows it held in memory with the reason; the sign-out
// after it is refused 0xFF, so it cannot overtake it. Once the clock is
// set and the backlog drains, the outbox accepts writes again: the
// sign-in is stored and delivered, then the re-sent sign-out, each once,
// in that order.
func TestSignInKeptWhileOutboxRefuses(t *testing.T) {
	mc := movableClock(time.Unix(90, 0), 90*time.Second) // 1970, 90 s after boot
	r := startDaemon(t, stampClock(mc, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
		func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) { c.Outbox.MaxSizeMiB = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience(60*time.Second))
	defer cancel()
	now := time.Now()
	// bbolt frees pages as transactions end, so a file that refused one
	// write may take the next: fill it, and if the sign-in still fits,
	// fill again and sign the next driver in, until one is refused. The
	// sign-ins that fitted are stored and must be delivered too.
	var (
		fillers int
		early   []string // licences of sign-ins stored before the outbox refused one
		shift   metersim.Shift
		st      admin.Status
	)
	for attempt := 0; ; attempt++ {
		fillers += fillOutbox(t, r.d.outbox)
		shift = metersim.Shift{Driver: "4210831988090601" + strconv.Itoa(10+attempt) + "X", Trips: 21,
			At: now.Truncate(time.Minute), End: now.Add(time.Minute).Truncate(time.Minute)}
		if res, err := r.meter.SignIn(ctx, shift); err != nil || !res.OK() {
			t.Fatalf("sign-in: %+v %v", res, err)
		}
		stored := uint64(fillers + len(early) + 1)
		st = waitStatus(t, r.d, "the sign-in held in memory or stored", func(st admin.Status) bool {
			return st.Held.Count == 1 || st.Outbox.Pending == stored
		})
		if st.Held.Count == 1 {
			break
		}
		if attempt == 4 {
			t.Fatalf("the outbox took 5 sign-ins after refusing writes: %+v", st.Outbox)
		}
		early = append(early, shift.Driver)
	}
	t.Logf("outbox full after %d records; %d sign-in(s) fitted before one was refused", fillers, len(early))
	if !strings.Contains(st.Held.Reason, "full") || st.Held.Oldest.IsZero() {
		t.Errorf("held status %+v: want the reason (outbox full)", st.Held)
	}

	signedOut := make(chan metersim.Result, 1)
	go func() {
		res, err := r.meter.SignOut(ctx, shift)
		if err != nil {
			t.Errorf("sign-out: %v", err)
		}
		signedOut <- res
	}()
	waitStatus(t, r.d, "the sign-out refused", func(st admin.Status) bool { return st.Meter.Answers.Failed >= 1 })
	if st := r.d.link.Stats(); st.Answers.OK != 0 || st.Frames.SignIn != 1 {
		t.Fatalf("the agent answered %d frames 0x90 while the outbox was full (want none); sign-ins %d", st.Answers.OK, st.Frames.SignIn)
	}
	if n := r.srv.Stats().Requests; n != 0 {
		t.Fatalf("%d punches sent while the clock was untrusted", n)
	}

	set(mc, now, 10*time.Minute) // network time
	r.d.Uploader().Wake()
	// A backlog of a hundred punches, each signed and verified under the
	// race detector: give it more than waitAccepted's 10 s.
	if err := r.srv.WaitAccepted(ctx, fillers+len(early)+2); err != nil {
		t.Fatalf("waiting for %d accepted punches (have %d): %v", fillers+len(early)+2, len(r.srv.Accepted()), err)
	}
	got := r.srv.Accepted()
	res := <-signedOut
	if !res.OK() || res.Command != meter.CmdSignOutResend || res.History[0] != meter.ResultFailed {
		t.Errorf("sign-out exchange %+v: want refused, then stored as 0x00F1", res)
	}
	var order []string
	for _, p := range got {
		if p.DriverLicense == shift.Driver {
			order = append(order, p.EventType)
		}
	}
	if strings.Join(order, ",") != "SIGN_IN,SIGN_OUT" || got[len(got)-1].DriverLicense != shift.Driver {
		t.Fatalf("punches of the driver: %v, want the sign-in once, then the sign-out once, after the backlog", order)
	}
	for _, lic := range early {
		n := 0
		for _, p := range got {
			if p.DriverLicense == lic {
				n++
			}
		}
		if n != 1 {
			t.Errorf("sign-in of %s stored before the refusal delivered %d times, want once", lic, n)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(r.srv.Accepted()); n != fillers+len(early)+2 {
		t.Errorf("%d punches accepted, want %d", n, fillers+len(early)+2)
	}
	if st := waitStatus(t, r.d, "nothing held", func(st admin.Status) bool { return st.Held.Count == 0 }); st.Held.Reason != "" {
		t.Errorf("after recovery: held %+v", st.Held)
	}
}

// The field report's sign-in: device 02, licence 42108319880906011X,
// meter time 2026-11-30 11:50, 7 trips, result 0x90.
const signIn2042 = "55AA0038020000E1343430333030303030303031000000003432313038333139383830393036303131580042313233343520261130115000000007903855AA"

// TestClockIn2042: a board whose clock came up in 2042 and is not
// synchronised. The sign-in is stamped with the meter's time, and status
// shows the disagreement.
func TestClockIn2042(t *testing.T) {
	mc := movableClock(time.Date(2042, 4, 27, 2, 20, 0, 0, time.UTC), time.Minute)
	clock := stampClock(mc, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	clock.Sync = func() stamp.SyncState {
		return stamp.SyncState{Synchronized: false, Source: stamp.SyncKernel, MaxError: 16 * time.Second}
	}
	r := startDaemon(t, clock)
	frame, err := hex.DecodeString(signIn2042)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.meter.WriteRaw(frame); err != nil {
		t.Fatal(err)
	}
	got := waitAccepted(t, r.srv, 1)
	if p := got[0]; p.EventTime != "2026-11-30T11:50:00.000+08:00" || p.EventType != punch.SignIn || p.DriverLicense != "42108319880906011X" {
		t.Fatalf("punch %+v, want event_time 2026-11-30T11:50:00.000+08:00", p)
	}
	st, err := r.d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := st.Clock.MeterDisagreement
	if st.Clock.Synchronized || st.Clock.SyncSource != stamp.SyncKernel || d == nil ||
		!d.Meter.Equal(time.Date(2026, 11, 30, 11, 50, 0, 0, stamp.Zone)) || d.Offset < 15*365*24*time.Hour {
		t.Fatalf("clock status %+v, disagreement %+v", st.Clock, d)
	}
}

// TestSignInWithoutLicenceStoredDead: a meter that signs in with an empty
// 从业资格证号 (a terminal-identity meter given none): the sign-in is
// stored dead with its reason and never sent.
func TestSignInWithoutLicenceStoredDead(t *testing.T) {
	r := startDaemon(t, nil)
	s := metersim.Shift{Driver: "", Trips: 3, At: time.Now().Add(-time.Minute).Truncate(time.Minute)}
	if _, err := r.meter.SignIn(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r.d, "the dead sign-in", func(st admin.Status) bool { return st.Outbox.Dead == 1 })
	recs, _, err := r.d.Outbox().List(outbox.Dead, 0, 10)
	if err != nil || len(recs) != 1 || recs[0].DeadReason != "no driver licence from the meter" || recs[0].Event.Type != punch.SignIn {
		t.Fatalf("dead records %+v, %v", recs, err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := r.srv.Stats().Requests; n != 0 {
		t.Errorf("%d requests sent for a sign-in without a licence", n)
	}
}

// TestDriverIdentityFromTerminal: with meter.identity = "terminal" the
// meter's request is refused until a driver is set; then answered with
// the driver's licence, company and the plate's last six characters, and
// the punch carries that licence.
func TestDriverIdentityFromTerminal(t *testing.T) {
	r := startDaemon(t, nil, func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) {
		c.Meter.Identity = config.IdentityTerminal
	})
	ctx := context.Background()
	s := metersim.Shift{Driver: "", Trips: 9, At: time.Now().Add(-time.Minute).Truncate(time.Minute)}
	if _, err := r.meter.SignIn(ctx, s); !errors.Is(err, metersim.ErrRefused) {
		t.Fatalf("sign-in with no driver set: %v, want refused", err)
	}
	if err := r.d.Outbox().(*outbox.Outbox).SetDriver(outbox.Driver{Licence: "42108319880906011X", Company: "440300000001"}); err != nil {
		t.Fatal(err)
	}
	res, err := r.meter.SignIn(ctx, s)
	if err != nil || res.Identity != (meter.Identity{CompanyLicence: "440300000001", DriverLicence: "42108319880906011X", Plate: "B12345"}) {
		t.Fatalf("sign-in: %+v, %v", res, err)
	}
	if got := waitAccepted(t, r.srv, 1); got[0].DriverLicense != "42108319880906011X" {
		t.Fatalf("punch %+v", got[0])
	}
	if st := r.d.link.Stats(); st.Answers.Refused != 1 || st.Answers.Request != 2 {
		t.Errorf("answers %+v", st.Answers)
	}
}

// TestRequestAnswerFromAdminSocket: the driver set through the admin
// socket (as `taxi-agent driver set` does) is what the 0x00E0 answer
// carries, byte for byte; with none set the answer is 0xFF.
func TestRequestAnswerFromAdminSocket(t *testing.T) {
	var sock string
	r := startDaemon(t, nil, func(c *config.Config, _ *punchsim.Server, _ *metersim.Options) {
		c.Meter.Identity = config.IdentityTerminal
		sock = c.Admin.Socket
	})
	ctx := context.Background()
	c := admin.Dial(sock)
	defer c.Close()
	ob := c.Outbox(ctx)
	// swipe is the answer's 刷卡时间 field, the only one that is not fixed.
	answer := func() string {
		t.Helper()
		res, err := r.meter.RequestSignIn(ctx, metersim.Shift{})
		if err != nil && !errors.Is(err, metersim.ErrRefused) {
			t.Fatal(err)
		}
		body := hex.EncodeToString(res.Data)
		return strings.ToUpper(body[:82] + "<swipe>" + body[94:])
	}
	const (
		none = "0000000000000000000000000000000000000000000000000000000000000000000000000000000000<swipe>000000000000000000FF"
		set  = "3434303330303030303030310000000034323130383331393838303930363031315800423132333435<swipe>00000000000000000090"
	)
	if got := answer(); got != strings.ToUpper(none) {
		t.Fatalf("no driver set: answer %s, want %s", got, none)
	}
	if err := ob.SetDriver(outbox.Driver{Licence: "42108319880906011X", Company: "440300000001"}); err != nil {
		t.Fatal(err)
	}
	if got := answer(); got != strings.ToUpper(set) {
		t.Fatalf("driver set: answer %s, want %s", got, set)
	}
	if err := ob.ClearDriver(); err != nil {
		t.Fatal(err)
	}
	if got := answer(); got != strings.ToUpper(none) {
		t.Fatalf("driver cleared: answer %s, want %s", got, none)
	}
}

// TestVendorDialectFromConfig: a meter of the maker that sends 0xF0E1,
// 0xF0E4 and 0xF0F1, and expects an answer to its sign-in, configured by
// meter.* keys: both events are stored and delivered, and the sign-in is
// answered in the meter's own word.
func TestVendorDialectFromConfig(t *testing.T) {
	r := startDaemon(t, nil, func(c *config.Config, _ *punchsim.Server, mo *metersim.Options) {
		c.Meter.SignInCommand, c.Meter.SignOutCommand, c.Meter.ResendSignOutCommand = 0xF0E1, 0xF0E4, 0xF0F1
		c.Meter.AnswerSignIn = true
		mo.Dialect = meter.Dialect{SignIn: 0xF0E1, SignOut: 0xF0E4, SignOutResend: 0xF0F1, AnswerSignIn: true}
	})
	m := r.meter
	ctx := context.Background()
	s := metersim.Shift{Driver: "42108319880906011X", Trips: 5, At: time.Now().Truncate(time.Minute), End: time.Now().Truncate(time.Minute)}
	res, err := m.SignIn(ctx, s)
	if err != nil || !res.OK() || res.Command != 0xF0E1 || res.Answer != meter.ResultOK {
		t.Fatalf("sign-in: %+v, %v", res, err)
	}
	if res, err := m.SignOut(ctx, s); err != nil || !res.OK() || res.Command != 0xF0E4 {
		t.Fatalf("sign-out: %+v, %v", res, err)
	}
	got := waitAccepted(t, r.srv, 2)
	if got[0].EventType != punch.SignIn || got[1].EventType != punch.SignOut {
		t.Fatalf("punches %+v", got)
	}
}
