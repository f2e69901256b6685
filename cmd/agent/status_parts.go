package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/uploader"
)

// silentAfter is how long a meter may say nothing before status calls it
// silent: meters send a heartbeat every few seconds while powered.
const silentAfter = time.Minute

// meterSection writes the meter link lines and returns hints.
func meterSection(line func(k, format string, args ...any), st *admin.Status, now time.Time) []string {
	m := st.Meter
	var hints []string
	switch {
	case !m.Connected:
		why := "port not open"
		if m.LastPortError != "" {
			why = fmt.Sprintf("%s (%s)", m.LastPortError, ago(m.LastPortErrorAt, now))
		}
		line("meter", "NOT CONNECTED: %s", why)
		hints = append(hints, "the meter port cannot be opened: check meter.device in the config and the cable/USB adapter")
	case m.LastFrameAt.IsZero():
		line("meter", "port open since %s, but NO FRAME from the meter yet", clockTime(m.ConnectedSince))
		hints = append(hints, "no frame from the meter: check wiring (TX/RX swapped?) and meter.baud; "+
			"stop the agent and watch the line with 'agent meter monitor'")
	case now.Sub(m.LastFrameAt) > silentAfter:
		line("meter", "connected, but SILENT: last frame %s", ago(m.LastFrameAt, now))
		hints = append(hints, "the meter stopped talking: is it powered? check the cable")
	default:
		line("meter", "connected since %s, last frame %s", clockTime(m.ConnectedSince), ago(m.LastFrameAt, now))
	}
	if hb := m.Heartbeat; hb != nil {
		driver := ""
		if hb.DriverLicence != "" {
			driver = ", driver " + hb.DriverLicence
		}
		line("", "heartbeat %s: %s%s", ago(hb.At, now), hb.State, driver)
	}
	f := m.Frames
	line("", "frames in: %d sign-in, %d sign-out, %d re-sent sign-out, %d heartbeat, %d request, %d other",
		f.SignIn, f.SignOut, f.SignOutResend, f.Heartbeat, f.SignInRequest+f.SignOutRequest, f.Unknown)
	line("", "answered: %d stored (0x90), %d not stored (0xFF), %d request(s), %d refused (no driver set)",
		m.Answers.OK, m.Answers.Failed, m.Answers.Request, m.Answers.Refused)
	if fs := m.LastFailedSignIn; fs != nil {
		line("", "failed sign-ins (meter result not 0x90, no punch): %d, last %s: driver %s, result 0x%02X",
			m.FailedSignIns, ago(fs.At, now), orDash(fs.DriverLicence), fs.Result)
	}
	if m.Echoes > 0 || m.BadBodies > 0 {
		line("", "echoes of our own frames dropped: %d; unreadable reports: %d (%d left unanswered)", m.Echoes, m.BadBodies, m.BadBodiesUnanswered)
	}
	line("", "line errors: %d bad check, %d bad length, %d missing end, %d truncated, %d bytes dropped",
		m.BadChecks, m.BadLengths, m.MissingEnds, m.Truncated, m.BytesDropped)
	if m.Reopens > 0 || m.PortErrors > 0 {
		line("", "port: %d reopen(s), %d error(s), last: %s", m.Reopens, m.PortErrors, orDash(m.LastPortError))
	}
	valid := f.SignIn + f.SignOut + f.SignOutResend + f.Heartbeat + f.SignInRequest + f.SignOutRequest + f.StatusReply + f.Unknown
	if m.Resyncs > 10 && m.Resyncs*10 > valid {
		hints = append(hints, fmt.Sprintf("%d line errors against %d good frames: check meter.baud, parity and the cable", m.Resyncs, valid))
	}
	if m.HandlerErrors > 0 {
		hints = append(hints, fmt.Sprintf("%d event(s) could not be stored and the meter was told to re-send: check the outbox line and the disk", m.HandlerErrors))
	}
	return hints
}

// uploaderSection writes the delivery lines and returns hints.
func uploaderSection(line func(k, format string, args ...any), st *admin.Status, now time.Time) []string {
	u := st.Uploader
	var hints []string
	switch {
	case !u.Running:
		line("uploader", "NOT RUNNING")
	case u.HeadID == 0:
		line("uploader", "idle: nothing to send")
	case u.WaitingForClock:
		line("uploader", "event %d waits for a trusted clock", u.HeadID)
	case u.NextAttempt.IsZero() || !u.NextAttempt.After(now):
		line("uploader", "sending event %d", u.HeadID)
	default:
		line("uploader", "retrying event %d, next attempt %s (%s); %d failed attempt(s) since the last delivery", u.HeadID,
			ago(u.NextAttempt, now), clockTime(u.NextAttempt), u.ConsecutiveFailures)
	}
	if u.Mode != "" {
		line("mode", "%s", modeWords(u.Mode))
	}
	if a := u.LastAnswer; a != nil {
		who := "WeChat Pay"
		if u.Mode == "gateway" {
			who = "the gateway"
		}
		text := fmt.Sprintf("%d", a.Status)
		if a.Code != "" {
			text += " " + a.Code
		}
		if a.Message != "" {
			text += ": " + a.Message
		}
		line("last answer", "%s (%s) from %s: %s", clockTime(a.At), ago(a.At, now), who, text)
	}
	if u.Held != "" {
		line("", "HELD: %s", u.Held)
		if h := u.HeldAnswer; h != nil {
			line("", "held since %s (%s)", clockTime(h.Since), ago(h.Since, now))
		}
		hints = append(hints, "WeChat Pay refuses every event (HELD above): events are kept; fix the cause and they go out at the next attempt")
	}
	hints = append(hints, authSection(line, u.Auth, now)...)
	if e := u.LastError; e != nil {
		line("last error", "%s (%s), event %d, %s: %s", clockTime(e.At), ago(e.At, now), e.EventID, kindWords(e.Kind), attemptError(&e.AttemptError))
	}
	if u.StoreError != "" {
		line("", "OUTBOX ERROR: %s", u.StoreError)
		hints = append(hints, "the uploader cannot update the outbox: check the disk ('df', 'dmesg')")
	}
	retried := fmt.Sprintf("%d retried", u.Retried)
	if u.Throttled > 0 {
		retried += fmt.Sprintf(" (%d rate-limited)", u.Throttled)
	}
	line("", "since start: %d delivered, %s, %d dead-lettered, %d unverified answer(s)",
		u.Delivered, retried, u.DeadLettered, u.UnverifiedAnswers)
	line("", "traffic: %s sent, %s received, %d connection(s)", kib(u.BytesSent), kib(u.BytesReceived), u.Connections)
	if u.UnverifiedAnswers > 0 {
		hints = append(hints, fmt.Sprintf("%d answer(s) from the API did not verify: check wechatpay.public_key_id/public_key_file, the clock, or a proxy in the way", u.UnverifiedAnswers))
	}
	return hints
}

// modeWords says how punches leave the terminal.
func modeWords(mode string) string {
	if mode == "gateway" {
		return "gateway: sent to taxi-gateway over mutual TLS, signed there"
	}
	return "direct: signed here with the merchant key, sent to WeChat Pay"
}

// kib shows a byte count in KiB with one decimal.
func kib(n uint64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// connectivityView is the part of the daemon's connectivity report that
// status prints (internal/daemon's connectivity status).
type connectivityView struct {
	Netlink *struct {
		At        time.Time `json:"at"`
		Kind      string    `json:"kind"`
		Interface string    `json:"interface"`
	} `json:"last_netlink_event"`
	NetlinkError string `json:"netlink_error"`
	Probe        *struct {
		At   time.Time     `json:"at"`
		Addr string        `json:"addr"`
		OK   bool          `json:"ok"`
		RTT  time.Duration `json:"rtt"`
		Err  string        `json:"error"`
	} `json:"last_probe"`
}

// networkSection writes what the daemon knows about the network.
func networkSection(line func(k, format string, args ...any), raw json.RawMessage, now time.Time) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var c connectivityView
	if err := json.Unmarshal(raw, &c); err != nil {
		line("network", "%s", raw)
		return
	}
	switch {
	case c.NetlinkError != "":
		line("network", "not watching routes (%s): retries follow the backoff only", c.NetlinkError)
	case c.Netlink != nil:
		line("network", "last change: %s on %s, %s", c.Netlink.Kind, c.Netlink.Interface, ago(c.Netlink.At, now))
	default:
		line("network", "watching routes; no change since start")
	}
	if p := c.Probe; p != nil {
		if p.OK {
			line("", "probe %s: reachable in %s, %s", p.Addr, p.RTT.Round(time.Millisecond), ago(p.At, now))
		} else {
			line("", "probe %s: UNREACHABLE (%s), %s", p.Addr, p.Err, ago(p.At, now))
		}
	}
}

// kindWords says what kind of failure an uploader error kind is.
func kindWords(kind string) string {
	if w, ok := map[string]string{
		"network": "network error", "server": "server error", "throttled": "rate-limited",
		"unverified": "answer not verified", "held": "refused for every event", "rejected": "event rejected",
		"abandoned": "abandoned at shutdown",
	}[kind]; ok {
		return w
	}
	return kind
}

// syncLines writes the clock's synchronisation and any disagreement with
// the meter, and returns hints.
func syncLines(line func(k, format string, args ...any), c admin.ClockStatus, now time.Time) []string {
	state := "synchronised"
	if !c.Synchronized {
		state = "NOT synchronised: a wall clock more than an hour from the meter's is not used"
	}
	line("", "%s (%s)", state, c.SyncSource)
	d := c.MeterDisagreement
	if d == nil {
		return nil
	}
	line("", "disagreed with the meter %s: wall clock %s, meter %s (%s): the meter's time was used",
		ago(d.At, now), clockTime(d.At), clockTime(d.Meter), d.Offset.Round(time.Minute))
	return []string{"the wall clock disagrees with the meter's by more than an hour and is not synchronised: check time sync (timedatectl)"}
}

// authSection writes the keys that verify answers, WeChat Pay's time as
// learned, and the certificate downloader, and returns hints.
func authSection(line func(k, format string, args ...any), a *uploader.AuthStatus, now time.Time) []string {
	if a == nil {
		return nil
	}
	var hints []string
	serials := make([]string, len(a.Keys))
	for i, k := range a.Keys {
		serials[i] = k.Serial
		if !k.NotAfter.IsZero() {
			serials[i] += " (until " + k.NotAfter.Format("2006-01-02") + ")"
		}
	}
	line("answer keys", "%d: %s; asking for %s", len(a.Keys), strings.Join(serials, ", "), orDash(a.AcceptSerial))
	if d := a.Download; d != nil {
		switch {
		case d.LastError != "":
			line("", "certificate download FAILING (%s): %s; verifying with the keys above", ago(d.LastAttempt, now), d.LastError)
		case !d.LastSuccess.IsZero():
			line("", "certificates downloaded %s, kept in %s", ago(d.LastSuccess, now), d.StoreFile)
		default:
			line("", "certificates not downloaded yet; store %s", d.StoreFile)
		}
	}
	st := a.ServerTime
	if !st.Known {
		line("wechatpay time", "not learned yet (no verified answer since start)")
		return hints
	}
	off := time.Duration(st.OffsetSeconds) * time.Second
	what := "ahead of"
	if off < 0 {
		what, off = "behind", -off
	}
	line("wechatpay time", "%s %s this terminal's clock (learned %s from %d answer(s))", off, what, ago(st.LearnedAt, now), st.Answers)
	if a.CorrectedSigning {
		line("", "SIGNING WITH WECHAT PAY'S TIME: WeChat Pay refused the terminal's timestamp")
		hints = append(hints, "the system clock is off from WeChat Pay's: requests are signed with WeChat Pay's time; fix time sync (timedatectl)")
	}
	return hints
}
