// Package simrig sets up what surrounds an agent on a bench with no
// hardware, keys or network: throwaway keys, the signature-checking fake of
// WeChat Pay's punch endpoint (package punchsim) on loopback, a simulated
// taximeter (package metersim) on a pseudo-terminal, and an agent config
// pointing at them.
//
// `agent demo` plays its story on a Rig in-process. `agent sim` (Bench)
// keeps a Rig running for the real daemon started by hand: it writes the
// config to DIR/agent.toml and drives the meter and the endpoint at an
// interval or on demand, from a control socket at DIR/sim.sock that
// `agent sim -dir DIR <action>` talks to (Control).
//
// The control protocol is one line each way over a unix stream socket: the
// client sends an action ("signin", "signout", "endpoint down", "endpoint
// up", "endpoint reject") and reads "ok: <what happened>" or
// "error: <why not>".
package simrig
