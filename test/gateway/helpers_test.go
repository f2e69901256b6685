package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"taxi-agent/internal/punchsim"
	"taxi-agent/test/harness"
)

// punchBody is a valid punch for plate by driver n at second s of a day.
func punchBody(plate string, n, s int) string {
	return fmt.Sprintf(`{"plate_number":%q,"driver_license":%q,"event_time":"2026-11-30T08:%02d:%02d.000+08:00","event_type":"SIGN_IN","region_id":440300}`,
		plate, harness.Licence(n), (s/60)%60, s%60)
}

// rig is a fake WeChat Pay and a running gateway in front of it.
func rig(t *testing.T, perSecond float64) (*harness.Gateway, *punchsim.Server) {
	t.Helper()
	ep := harness.StartEndpoint(t, punchsim.Options{})
	g := harness.NewGateway(t, gatewayBin, ep, perSecond)
	g.Start()
	return g, ep
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
