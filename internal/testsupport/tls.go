package testsupport

import (
	"crypto/x509"
	"os"
	"testing"
)

// CertPool returns a pool that trusts the PEM certificates in caFile, such
// as the fake endpoint's throwaway CA.
func CertPool(tb testing.TB, caFile string) *x509.CertPool {
	tb.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		tb.Fatalf("no certificate in %s", caFile)
	}
	return roots
}
