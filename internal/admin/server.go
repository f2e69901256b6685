package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"taxi-agent/internal/outbox"
	"taxi-agent/internal/redact"
	"taxi-agent/internal/version"
)

// NewServer returns the admin API over HTTP for b. Serve it on the
// listener from Listen: every request is checked against the peer's
// credentials, and only root, the daemon's own user and members of the
// daemon's group are served; anyone else gets 403 and a log line.
// Technician changes (retry, purge) are logged with who made them.
func NewServer(b Backend, logger *slog.Logger) *http.Server {
	return newServer(b, logger, policy{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())})
}

func newServer(b Backend, logger *slog.Logger, pol policy) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{b: b, log: logger.With("component", "admin"), pol: pol}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathPing, s.ping)
	mux.HandleFunc("GET "+pathStatus, s.status)
	mux.HandleFunc("GET "+pathStats, s.stats)
	mux.HandleFunc("GET "+pathRecords, s.list)
	mux.HandleFunc("GET "+pathRecord, s.get)
	mux.HandleFunc("POST "+pathRecordRetry, s.retry)
	mux.HandleFunc("DELETE "+pathRecord, s.purge)
	mux.HandleFunc("POST "+pathDeadRetry, s.retryAllDead)
	mux.HandleFunc("DELETE "+pathDead, s.purgeAllDead)
	mux.HandleFunc("GET "+pathExport, s.export)
	mux.HandleFunc("GET "+pathDriver, s.driver)
	mux.HandleFunc("PUT "+pathDriver, s.setDriver)
	mux.HandleFunc("DELETE "+pathDriver, s.clearDriver)
	return &http.Server{
		Handler:           s.checkPeer(mux),
		ConnContext:       s.connContext,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

type server struct {
	b   Backend
	log *slog.Logger
	pol policy
}

type peerKey struct{}

// peerResult is what connContext learned about a connection's peer.
type peerResult struct {
	peer Peer
	err  error
}

// connContext reads the peer's credentials once per connection.
func (s *server) connContext(ctx context.Context, c net.Conn) context.Context {
	p, err := peerOf(c)
	return context.WithValue(ctx, peerKey{}, peerResult{p, err})
}

func peerFrom(ctx context.Context) (Peer, error) {
	r, ok := ctx.Value(peerKey{}).(peerResult)
	if !ok {
		return Peer{}, fmt.Errorf("read peer credentials: connection not from the admin server")
	}
	return r.peer, r.err
}

// checkPeer refuses requests from peers the policy does not allow, and
// from peers whose credentials cannot be read.
func (s *server) checkPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := peerFrom(r.Context())
		switch {
		case err != nil:
			err = fmt.Errorf("%w: %w", ErrRefused, err)
		case !s.pol.allows(p):
			err = fmt.Errorf("%w: uid %d (gid %d) is not root, uid %d or a member of group %s",
				ErrRefused, p.UID, p.GID, s.pol.uid, groupName(int(s.pol.gid)))
		}
		if err != nil {
			s.log.Warn("admin request refused", "peer_pid", p.PID, "peer_uid", p.UID, "peer_gid", p.GID,
				"method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("Connection", "close")
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) ping(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, ping{PID: os.Getpid(), Version: version.Get().Version})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Status(r.Context())
	if err != nil {
		writeError(w, fmt.Errorf("gather status: %w", err))
		return
	}
	writeJSON(w, st)
}

func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	st, err := s.b.Outbox().Stats()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, st)
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), 0)
	if err != nil {
		writeError(w, fmt.Errorf("read after: %w", err))
		return
	}
	limit, err := uintParam(q.Get("limit"), maxPage)
	if err != nil {
		writeError(w, fmt.Errorf("read limit: %w", err))
		return
	}
	recs, next, err := s.b.Outbox().List(outbox.State(q.Get("state")), after, int(min(max(limit, 1), maxPage)))
	if err != nil {
		writeError(w, err)
		return
	}
	if recs == nil {
		recs = []outbox.Record{}
	}
	writeJSON(w, page{Records: recs, NextAfter: next})
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := idParam(w, r)
	if !ok {
		return
	}
	rec, err := s.b.Outbox().Get(id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, rec)
}

func (s *server) retry(w http.ResponseWriter, r *http.Request) {
	id, ok := idParam(w, r)
	if !ok {
		return
	}
	if err := s.b.Outbox().Retry(id); err != nil {
		writeError(w, err)
		return
	}
	s.b.Requeued()
	s.audit(r, "technician moved a dead record back to pending", "id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) purge(w http.ResponseWriter, r *http.Request) {
	id, ok := idParam(w, r)
	if !ok {
		return
	}
	if err := s.b.Outbox().Purge(id); err != nil {
		writeError(w, err)
		return
	}
	s.audit(r, "technician purged a dead record", "id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) retryAllDead(w http.ResponseWriter, r *http.Request) {
	n, err := s.b.Outbox().RetryAllDead()
	if n > 0 {
		s.b.Requeued() // some moved even if a later batch failed
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.audit(r, "technician moved all dead records back to pending", "count", n)
	writeJSON(w, count{n})
}

func (s *server) purgeAllDead(w http.ResponseWriter, r *http.Request) {
	n, err := s.b.Outbox().PurgeAllDead()
	if err != nil {
		writeError(w, err)
		return
	}
	s.audit(r, "technician purged all dead records", "count", n)
	writeJSON(w, count{n})
}

func (s *server) driver(w http.ResponseWriter, _ *http.Request) {
	d, ok, err := s.b.Outbox().Driver()
	if err != nil {
		writeError(w, err)
		return
	}
	a := driverAnswer{Set: ok}
	if ok {
		a.Driver = &d
	}
	writeJSON(w, a)
}

func (s *server) setDriver(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := outbox.Driver{Licence: q.Get("licence"), Company: q.Get("company")}
	if err := s.b.Outbox().SetDriver(d); err != nil {
		writeError(w, err)
		return
	}
	s.audit(r, "driver set for the meter's requests", "driver_license", redact.LicenceValue(d.Licence), "company_licence", d.Company)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) clearDriver(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Outbox().ClearDriver(); err != nil {
		writeError(w, err)
		return
	}
	s.audit(r, "driver cleared: the meter's requests are refused until one is set")
	w.WriteHeader(http.StatusNoContent)
}

// export streams every record as JSON lines and ends with a line that
// says how many there were, or what went wrong.
func (s *server) export(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	n := 0
	err := s.b.Outbox().Export(func(rec outbox.Record) error {
		n++
		return enc.Encode(exportLine{Record: &rec})
	})
	if err != nil {
		body, _ := encodeError(err)
		enc.Encode(exportLine{Error: &body})
		return
	}
	enc.Encode(exportLine{End: &n})
}

// audit logs a change with who asked for it.
func (s *server) audit(r *http.Request, msg string, args ...any) {
	p, _ := peerFrom(r.Context())
	s.log.Info(msg, append(args, "peer_pid", p.PID, "peer_uid", p.UID)...)
}

func idParam(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, fmt.Errorf("read record id %q: %w", r.PathValue("id"), ErrBadRequest))
		return 0, false
	}
	return id, true
}

func uintParam(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number: %w", s, ErrBadRequest)
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	body, status := encodeError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
