package metersim

import "log/slog"

// LogValue logs the options; the status reply logs its driver licence
// masked (meter.StatusReply's own log form).
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.Duration("answer_timeout", o.AnswerTimeout), slog.Int("max_sends", o.MaxSends),
		slog.Duration("retry_delay", o.RetryDelay), slog.Int("vendor", int(o.Vendor)),
		slog.Any("dialect", o.Dialect), slog.Bool("echo", o.Echo), slog.Any("status", o.Status),
		slog.Uint64("seed", o.Seed))
}

// LogValue logs the result; the agent's identity logs its driver licence
// masked (meter.Identity's own log form).
func (r Result) LogValue() slog.Value {
	a := []slog.Attr{slog.Int("command", int(r.Command)), slog.Int("answer", int(r.Answer)),
		slog.Int("sends", r.Sends), slog.Bool("done", r.Done), slog.Time("sent_at", r.SentAt),
		slog.Any("identity", r.Identity)}
	if r.Request != nil {
		a = append(a, slog.Any("request", *r.Request))
	}
	return slog.GroupValue(a...)
}
