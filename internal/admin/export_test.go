package admin

import (
	"log/slog"
	"net/http"
)

// NewServerFor is NewServer for a daemon running as uid:gid, so tests can
// play a non-root daemon.
func NewServerFor(b Backend, logger *slog.Logger, uid, gid uint32) *http.Server {
	return newServer(b, logger, policy{uid: uid, gid: gid})
}
