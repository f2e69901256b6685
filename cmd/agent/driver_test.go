package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"taxi-agent/internal/outbox"
)

// TestDriverCommands: set, show and clear, with the daemon running (the
// real admin server over the real outbox) and stopped (the file), and the
// driver persists in the outbox file.
func TestDriverCommands(t *testing.T) {
	both(t, func(t *testing.T, e *agentEnv) {
		out, stderr, err := runCLI(t, "driver", "show", "-config", e.config)
		if err != nil || out != "no driver set: the meter's requests are refused\n" {
			t.Fatalf("show before set: %q %q %v", out, stderr, err)
		}
		if !strings.Contains(stderr, `meter.identity is "meter"`) {
			t.Errorf("show does not say the driver is unused with identity = meter: %q", stderr)
		}
		out, stderr, err = runCLI(t, "driver", "set", "-config", e.config, "-licence", "42108319880906011X", "-company", "440300000001")
		if err != nil || !strings.Contains(out, "driver set: licence 42108319880906011X, company 440300000001") {
			t.Fatalf("set: %q %q %v", out, stderr, err)
		}
		e.checkNote(t, stderr)
		out, _, err = runCLI(t, "driver", "show", "-config", e.config, "-json")
		var got struct {
			Set    bool
			Driver outbox.Driver
		}
		if err != nil || json.Unmarshal([]byte(out), &got) != nil || !got.Set || got.Driver.Licence != "42108319880906011X" ||
			got.Driver.Company != "440300000001" || got.Driver.SetAt.IsZero() {
			t.Fatalf("show -json: %q %v", out, err)
		}
		if e.running == nil { // the file holds it
			ob, err := outbox.Open(e.outbox, outbox.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			d, ok, err := ob.Driver()
			ob.Close()
			if !ok || err != nil || d.Licence != "42108319880906011X" {
				t.Errorf("driver in the file: %+v %v %v", d, ok, err)
			}
		} else if d, ok, _ := e.running.Driver(); !ok || d.Licence != "42108319880906011X" {
			t.Errorf("driver in the daemon's outbox: %+v %v", d, ok)
		}
		if _, _, err := runCLI(t, "driver", "set", "-config", e.config, "-licence", "4210831988 0906011X"); err == nil ||
			!strings.Contains(err.Error(), "printable ASCII") {
			t.Errorf("a licence with a space: %v", err)
		}
		if _, _, err := runCLI(t, "driver", "set", "-config", e.config); !errors.Is(err, errUsage) {
			t.Errorf("set without -licence: %v", err)
		}
		if out, _, err := runCLI(t, "driver", "clear", "-config", e.config); err != nil || !strings.Contains(out, "driver cleared") {
			t.Fatalf("clear: %q %v", out, err)
		}
		if out, _, err := runCLI(t, "driver", "show", "-config", e.config, "-json"); err != nil || strings.TrimSpace(out) != `{"set":false}` {
			t.Errorf("show after clear: %q %v", out, err)
		}
	})
}
