// Package pki makes and loads the certificates of a skjold cluster: one
// dedicated certificate authority per cluster and one certificate per node,
// used for mutual TLS on the cluster port. It uses the standard library only.
//
// Files in a PKI directory:
//
//	ca.crt, ca.key      the cluster CA (ECDSA P-256, 20 years); ca.key is 0600
//	<id>.crt, <id>.key  node <id> (ECDSA P-256, 10 years, CN = id, SANs from
//	                    its hosts, usable as TLS server and client); <id>.key is 0600
//
// Peers are verified against the cluster CA only, never the system roots.
// Host names are not checked: the peer's certificate must chain to the
// cluster CA, be valid now, allow both server and client authentication and
// carry a non-empty common name (the node id), whatever address was dialled.
// Only holders of a key signed by the cluster CA can talk to the cluster, and
// a typo in a host name or an address change cannot break it.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Validity of the certificates Init and Issue make.
const (
	CAValidity   = 20 * 365 * 24 * time.Hour
	NodeValidity = 10 * 365 * 24 * time.Hour
	// backdate absorbs clock differences between the node that makes a
	// certificate and the nodes that check it.
	backdate = time.Hour
)

// File names inside a PKI directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// NodeSpec names a node and the host names and IP addresses it is known by.
type NodeSpec struct {
	ID    string
	Hosts []string // DNS names and/or IP addresses; may be empty
}

// Files returns the paths of the CA certificate and of node id's certificate
// and key in dir.
func Files(dir, id string) (caFile, certFile, keyFile string) {
	return filepath.Join(dir, CACertFile), filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key")
}

// LoadDir is Load with the files Init and Issue write in dir for node id.
func LoadDir(dir, id string) (*tls.Config, error) {
	return Load(Files(dir, id))
}

// Init creates a new cluster CA in dir (created 0700 if needed) and a
// certificate for each node. It refuses to touch an existing CA, and any
// existing node file.
func Init(dir string, nodes []NodeSpec) error {
	caCrt, caKey := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{caCrt, caKey} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("pki: %s already exists: refusing to overwrite the cluster CA (issue certificates for new nodes with it instead)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if err := checkSpec(n); err != nil {
			return err
		}
		if seen[n.ID] {
			return fmt.Errorf("pki: node %q listed twice", n.ID)
		}
		seen[n.ID] = true
		if err := checkNodeFilesAbsent(dir, n.ID); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	now := time.Now()
	serial, err := newSerial()
	if err != nil {
		return err
	}
	skid, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "skjold cluster CA", Organization: []string{"skjold"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	// The key first: a CA certificate without its key would block Init
	// without being usable.
	if err := writeKey(caKey, key); err != nil {
		return err
	}
	if err := writeCert(caCrt, der); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := issue(dir, ca, key, n, now.Add(-backdate), now.Add(NodeValidity)); err != nil {
			return err
		}
	}
	return nil
}

// Issue makes a certificate for node, signed by the CA in dir. It refuses to
// overwrite the node's existing files.
func Issue(dir string, node NodeSpec) error {
	if err := checkSpec(node); err != nil {
		return err
	}
	if err := checkNodeFilesAbsent(dir, node.ID); err != nil {
		return err
	}
	ca, key, err := loadCA(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	if now.After(ca.NotAfter) {
		return fmt.Errorf("pki: CA certificate %s expired on %s", filepath.Join(dir, CACertFile), ca.NotAfter.Format(time.RFC3339))
	}
	return issue(dir, ca, key, node, now.Add(-backdate), now.Add(NodeValidity))
}

// Load reads the cluster CA certificate and a node's certificate and key,
// checks that they belong together, and returns one tls.Config to both
// listen and dial with: TLS 1.3 or later, the node's certificate presented
// on both sides, peers required to present a certificate that verifies
// against the cluster CA (see the package documentation for what is and is
// not checked). Errors name the file and the problem.
func Load(caFile, certFile, keyFile string) (*tls.Config, error) {
	caPEM, err := readFile(caFile, "CA certificate")
	if err != nil {
		return nil, err
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate %s: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	now := time.Now()
	for _, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("pki: CA certificate %s: %q is not a CA certificate", caFile, c.Subject.CommonName)
		}
		if err := checkTime(c, now); err != nil {
			return nil, fmt.Errorf("pki: CA certificate %s: %w", caFile, err)
		}
		pool.AddCert(c)
	}

	certPEM, err := readFile(certFile, "certificate")
	if err != nil {
		return nil, err
	}
	chain, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %s: %w", certFile, err)
	}
	leaf := chain[0]
	keyPEM, err := readFile(keyFile, "key")
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: key %s: %w", keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("pki: key %s does not match certificate %s", keyFile, certFile)
	}
	if err := checkTime(leaf, now); err != nil {
		return nil, fmt.Errorf("pki: certificate %s: %w", certFile, err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, fmt.Errorf("pki: certificate %s has an empty common name (it must be the node id)", certFile)
	}
	if err := verify(chain, pool, now); err != nil {
		return nil, fmt.Errorf("pki: certificate %s is not a valid node certificate of the cluster CA in %s: %w", certFile, caFile, err)
	}

	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: der, PrivateKey: key, Leaf: leaf}},
		// Server side: Go verifies client certificates against ClientCAs.
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  pool,
		RootCAs:    pool,
		// Client side: Go's own verification would also match the dialled
		// host name against the SANs, which the cluster deliberately does
		// not do. It is switched off and replaced by VerifyConnection, which
		// checks the chain against the cluster CA on both sides.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("pki: peer presented no certificate")
			}
			if cs.PeerCertificates[0].Subject.CommonName == "" {
				return errors.New("pki: peer certificate has an empty common name")
			}
			if err := verify(cs.PeerCertificates, pool, time.Now()); err != nil {
				return fmt.Errorf("pki: peer certificate %q: %w", cs.PeerCertificates[0].Subject.CommonName, err)
			}
			return nil
		},
	}
	return cfg, nil
}

// PeerID returns the node id (common name) of the certificate a peer
// presented on cs, empty if none.
func PeerID(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

// verify checks chain[0] against the cluster CA pool, as a certificate good
// for both TLS server and client authentication (every node is both).
func verify(chain []*x509.Certificate, pool *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := chain[0].Verify(x509.VerifyOptions{
			Roots:         pool,
			Intermediates: inter,
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{u},
		}); err != nil {
			return err
		}
	}
	return nil
}

func checkTime(c *x509.Certificate, now time.Time) error {
	if now.After(c.NotAfter) {
		return fmt.Errorf("expired on %s", c.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(c.NotBefore) {
		return fmt.Errorf("not valid before %s (check the clock)", c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func checkSpec(n NodeSpec) error {
	if n.ID == "" {
		return errors.New("pki: empty node id")
	}
	for _, r := range n.ID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("pki: node id %q: only letters, digits, '-', '_' and '.' are allowed", n.ID)
		}
	}
	if n.ID == "ca" || strings.HasPrefix(n.ID, ".") {
		return fmt.Errorf("pki: node id %q is reserved", n.ID)
	}
	for _, h := range n.Hosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, " /:") && net.ParseIP(h) == nil {
			return fmt.Errorf("pki: node %q: %q is neither a host name nor an IP address", n.ID, h)
		}
	}
	return nil
}

func checkNodeFilesAbsent(dir, id string) error {
	_, crt, key := Files(dir, id)
	for _, p := range []string{crt, key} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("pki: %s already exists: refusing to overwrite node %q's files", p, id)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

func issue(dir string, ca *x509.Certificate, caKey crypto.Signer, n NodeSpec, notBefore, notAfter time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate key for %q: %w", n.ID, err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	skid, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return err
	}
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: n.ID, Organization: []string{"skjold"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
	}
	for _, h := range n.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pki: create certificate for %q: %w", n.ID, err)
	}
	_, crt, keyFile := Files(dir, n.ID)
	if err := writeKey(keyFile, key); err != nil {
		return err
	}
	return writeCert(crt, der)
}

func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	crtFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	crtPEM, err := readFile(crtFile, "CA certificate")
	if err != nil {
		return nil, nil, err
	}
	certs, err := parseCerts(crtPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: CA certificate %s: %w", crtFile, err)
	}
	ca := certs[0]
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("pki: CA certificate %s: not a CA certificate", crtFile)
	}
	keyPEM, err := readFile(keyFile, "CA key")
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: CA key %s: %w", keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("pki: CA key %s does not match CA certificate %s", keyFile, crtFile)
	}
	return ca, key, nil
}

func readFile(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pki: %s %s: file does not exist", what, path)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", what, err)
	}
	return b, nil
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bad certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bad private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sum := sha1.Sum(der) //nolint:gosec // RFC 5280 key identifier, not a security function
	return sum[:], nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCert(path string, der []byte) error {
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeNew writes a file that must not exist yet, durably: a temporary file
// is written and synced, then linked into place (which fails if the name
// exists).
func writeNew(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pki: %s already exists: refusing to overwrite it", path)
		}
		return fmt.Errorf("pki: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
