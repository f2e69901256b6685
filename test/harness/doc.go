// Package harness is the shared rig of the end-to-end, crash, fault and
// bad-input suites under test/ and of the benchmark tool: it runs the real
// agent binary as a separate process against a simulated taximeter on a
// pseudo-terminal and the signature-checking fake of WeChat Pay on
// loopback, the way systemd would run it on a terminal.
//
//	bin := harness.MustBuild(m, false)           // in TestMain, once per package
//	rig := harness.NewRig(t, bin, harness.RigOptions{})
//	a := rig.Start()                             // exec, then wait for READY=1
//	res, err := rig.Meter.SignIn(ctx, shift)     // 0x90 once the event is durable
//	rig.Endpoint.WaitAccepted(ctx, 1)
//	a.Terminate(10 * time.Second)                // SIGTERM, exit status 0
//	recs := rig.Records()                        // the outbox, read-only
//
// Every helper taking a testing.TB fails the test on error and registers
// its cleanup; the agent's stderr is kept in a file and printed when the
// test fails. The functions that return errors instead (Build, Launch,
// EncodeConfig, ReadOutbox) are for the benchmark tool, which has no
// testing.TB.
package harness
