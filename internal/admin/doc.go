// Package admin is the field technician's way into a running agent: an
// HTTP API with JSON bodies on a unix socket, its client, and the fallback
// to the outbox file when no agent answers.
//
// The daemon calls Listen (mode 0660; a stale socket nobody answers on is
// replaced, a live one or a non-socket is left alone) and serves
// NewServer(backend) on it. Every request is checked against the peer's
// credentials as the kernel recorded them at connect time (SO_PEERCRED,
// SO_PEERGROUPS): root, the daemon's own user and members of the daemon's
// group are served; anyone else gets 403 and a log line, even if the
// socket's mode was loosened. Retries and purges are logged with the
// caller's uid and pid.
//
// The CLI calls Connect, which asks the daemon first (Dial, Ping) and,
// only if nobody answers (ErrNoDaemon), opens the outbox file itself. When
// neither works the error says which and why: a *PermissionError names the
// group (or owner) that may, a locked file names the pid and program that
// hold it. Errors of the outbox cross the socket as codes and come back
// wrapping the same sentinels (outbox.ErrNotFound, outbox.ErrNotDead, …),
// so the CLI handles both paths alike.
//
// The API, all under /v1: GET ping, status, outbox/stats,
// outbox/records?state=&after=&limit= (cursor pages of at most 1000),
// outbox/records/{id}, outbox/export (JSON lines ending with a count line,
// so a cut stream is detected); POST outbox/records/{id}/retry,
// outbox/dead/retry; DELETE outbox/records/{id}, outbox/dead.
//
// What a page or the stats cost through the socket, against reading the
// open outbox directly, is measured by BenchmarkListPage and BenchmarkStats;
// the figures are in FIGURES.md beside this file. The README's
// troubleshooting section shows the commands built on it, with real output.
package admin
