package gateway

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"taxi-agent/internal/config"
)

// The files of a fleet CA directory.
const (
	CACertFile  = "ca.pem"       // the fleet CA certificate: terminals' ca_file, the gateway's client roots
	CAKeyFile   = "ca.key"       // its private key, mode 0600
	IssuedFile  = "issued.jsonl" // one Issued per line, every certificate issued
	RevokedFile = "revoked"      // the revocation list (Revocations)
)

// Certificate lifetimes.
const (
	CALifetime       = 20 * 365 * 24 * time.Hour
	TerminalLifetime = 5 * 365 * 24 * time.Hour // a terminal is re-enrolled by a technician on site
	ServerLifetime   = 2 * 365 * 24 * time.Hour
)

// Issued is the record of one certificate the CA issued.
type Issued struct {
	Serial   string    `json:"serial"`          // upper-case hex, as revoke and status show it
	Plate    string    `json:"plate,omitempty"` // a terminal's plate
	Hosts    []string  `json:"hosts,omitempty"` // a gateway's names and addresses
	IssuedAt time.Time `json:"issued_at"`
	NotAfter time.Time `json:"not_after"`
}

// CA is a fleet CA directory.
type CA struct {
	Dir  string
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey // nil when loaded for verification only
}

// InitCA creates a fleet CA in dir (made 0700 if missing): an ECDSA P-256
// key (mode 0600), a self-signed certificate that may sign only end-entity
// certificates, an empty issued list and an empty revocation list. It
// refuses a directory that already holds a CA.
func InitCA(dir, name string, now time.Time) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ca directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("init ca in %s: %w", dir, ErrCAExists)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"taxi-gateway fleet CA"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, CACertFile), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	for _, f := range []string{IssuedFile, RevokedFile} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			return nil, fmt.Errorf("create %s: %w", f, err)
		}
	}
	return &CA{Dir: dir, Cert: cert, key: key}, nil
}

// LoadCA loads the CA in dir; withKey also loads its private key, which
// must not be readable by group or others.
func LoadCA(dir string, withKey bool) (*CA, error) {
	data, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load ca from %s: %w", dir, ErrNoCA)
	} else if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load ca: %s holds no certificate", filepath.Join(dir, CACertFile))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	ca := &CA{Dir: dir, Cert: cert}
	if withKey {
		if ca.key, err = readKey(filepath.Join(dir, CAKeyFile)); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// Pool is a pool holding only the CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// IssueTerminal writes into dir a terminal key (terminal.key, mode 0600)
// and certificate (terminal.pem) whose subject names plate, for client
// authentication only, plus the CA certificate (fleet-ca.pem) for the
// terminal's gateway.ca_file. It records the certificate in the issued
// list and returns its record.
func (ca *CA) IssueTerminal(plate, dir string, now time.Time) (Issued, error) {
	if !config.PlateValid(plate) {
		return Issued{}, fmt.Errorf("issue certificate for %q: %w, e.g. 粤B12345", plate, ErrBadPlate)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: plate, Organization: []string{"taxi-gateway terminal"}},
		NotAfter:    now.Add(TerminalLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	rec := Issued{Plate: plate}
	return ca.issue(tmpl, rec, dir, "terminal", now)
}

// IssueServer writes into dir the gateway's key (gateway.key, mode 0600)
// and certificate (gateway.pem) for the given DNS names and IP addresses,
// for server authentication only, and records it.
func (ca *CA) IssueServer(hosts []string, dir string, now time.Time) (Issued, error) {
	if len(hosts) == 0 {
		return Issued{}, fmt.Errorf("issue gateway certificate: no -host given")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{"taxi-gateway"}},
		NotAfter:    now.Add(ServerLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, Issued{Hosts: hosts}, dir, "gateway", now)
}

func (ca *CA) issue(tmpl *x509.Certificate, rec Issued, dir, name string, now time.Time) (Issued, error) {
	if ca.key == nil {
		return Issued{}, fmt.Errorf("issue certificate: the CA was loaded without its key")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Issued{}, fmt.Errorf("create output directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("generate key: %w", err)
	}
	tmpl.SerialNumber = randomSerial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.BasicConstraintsValid = true
	tmpl.NotAfter = minTime(tmpl.NotAfter, ca.Cert.NotAfter)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("create certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, name+".key"), key); err != nil {
		return Issued{}, err
	}
	if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der, 0o644); err != nil {
		return Issued{}, err
	}
	if err := writePEM(filepath.Join(dir, "fleet-ca.pem"), "CERTIFICATE", ca.Cert.Raw, 0o644); err != nil {
		return Issued{}, err
	}
	rec.Serial = SerialString(tmpl.SerialNumber)
	rec.IssuedAt, rec.NotAfter = now.UTC(), tmpl.NotAfter.UTC()
	line, _ := json.Marshal(rec)
	f, err := os.OpenFile(filepath.Join(ca.Dir, IssuedFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return Issued{}, fmt.Errorf("record issued certificate: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return Issued{}, fmt.Errorf("record issued certificate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Issued{}, fmt.Errorf("record issued certificate: %w", err)
	}
	return rec, nil
}

// IssuedList reads every certificate the CA in dir issued, oldest first.
func IssuedList(dir string) ([]Issued, error) {
	f, err := os.Open(filepath.Join(dir, IssuedFile))
	if err != nil {
		return nil, fmt.Errorf("read issued list: %w", err)
	}
	defer f.Close()
	var out []Issued
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rec Issued
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("read issued list: line %d: %w", n, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// SerialString is a certificate serial as the gateway writes it:
// upper-case hex without separators.
func SerialString(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

// PlateOf is the plate a terminal certificate names.
func PlateOf(cert *x509.Certificate) string { return cert.Subject.CommonName }

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	if err := config.CheckPrivate(path); err != nil {
		return nil, fmt.Errorf("load ca key: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load ca key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("load ca key: %s holds no PEM data", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load ca key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load ca key: %s is not an ECDSA key", path)
	}
	return ek, nil
}

// writePEM writes one PEM block with mode, replacing the file atomically.
func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: kind, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil { // exactly mode, whatever the umask
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
