// Package fleet holds the fleet-scale tests of the uploader: many real
// uploader.Uploader instances, each over its own real outbox file, regain
// the network at the same instant against one rate-limited punch endpoint
// (internal/punchsim behind a token bucket that answers 429 with
// Retry-After), and the bytes each delivered event costs on the wire, cold
// and warm, with TLS session resumption across a reconnect.
//
// The package has no code of its own; `go test ./test/fleet` runs the
// reduced fleet and the wire checks, `go test ./test/fleet -run Fleet
// -fleet.full -v` the full fleet of 2 000 terminals. test/fleet/model is
// an event-level model of the same simulation, fast enough to sweep pacing
// laws. FIGURES.md has the figures and the commands that produced them.
package fleet
