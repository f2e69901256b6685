package redact

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLicence(t *testing.T) {
	for in, want := range map[string]string{
		"42108319880906011X": "**************011X",
		"6298416":            "***8416",
		"1234":               "****",
		"":                   "",
	} {
		if got := Licence(in); got != want {
			t.Errorf("Licence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLicenceValueInLogs(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("punch", "driver_license", LicenceValue("42108319880906011X"))
	if strings.Contains(buf.String(), "421083") || !strings.Contains(buf.String(), "011X") {
		t.Fatalf("licence not masked: %s", buf.String())
	}
}
