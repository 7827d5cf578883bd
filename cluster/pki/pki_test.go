package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := parseCerts(b)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

func mustInit(t *testing.T, nodes ...NodeSpec) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := Init(dir, nodes); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInit(t *testing.T) {
	dir := mustInit(t,
		NodeSpec{ID: "n1", Hosts: []string{"n1.example", "10.0.0.1"}},
		NodeSpec{ID: "n2", Hosts: []string{"::1"}},
	)
	for name, perm := range map[string]os.FileMode{
		"ca.crt": 0o644, "ca.key": 0o600,
		"n1.crt": 0o644, "n1.key": 0o600,
		"n2.crt": 0o644, "n2.key": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 6 {
		t.Errorf("%d files in %s, want 6 (no temporary files left)", len(ents), dir)
	}

	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v MaxPathLenZero=%v KeyUsage=%v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	checkP256(t, "CA", ca)
	if d := ca.NotAfter.Sub(time.Now()); d < CAValidity-2*time.Hour || d > CAValidity {
		t.Errorf("CA validity left %v, want about 20 years", d)
	}

	n1 := readCert(t, filepath.Join(dir, "n1.crt"))
	checkP256(t, "n1", n1)
	if n1.Subject.CommonName != "n1" {
		t.Errorf("n1 CN = %q", n1.Subject.CommonName)
	}
	if !slices.Equal(n1.DNSNames, []string{"n1.example"}) || len(n1.IPAddresses) != 1 || !n1.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) {
		t.Errorf("n1 SANs: %v %v", n1.DNSNames, n1.IPAddresses)
	}
	if !slices.Contains(n1.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(n1.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("n1 ExtKeyUsage = %v", n1.ExtKeyUsage)
	}
	if n1.IsCA {
		t.Error("node certificate is a CA")
	}
	if d := n1.NotAfter.Sub(time.Now()); d < NodeValidity-2*time.Hour || d > NodeValidity {
		t.Errorf("n1 validity left %v, want about 10 years", d)
	}
	if err := n1.CheckSignatureFrom(ca); err != nil {
		t.Errorf("n1 not signed by the CA: %v", err)
	}
	n2 := readCert(t, filepath.Join(dir, "n2.crt"))
	if len(n2.IPAddresses) != 1 || !n2.IPAddresses[0].Equal(net.IPv6loopback) || len(n2.DNSNames) != 0 {
		t.Errorf("n2 SANs: %v %v", n2.DNSNames, n2.IPAddresses)
	}
	for _, id := range []string{"n1", "n2"} {
		if _, err := LoadDir(dir, id); err != nil {
			t.Errorf("LoadDir(%s): %v", id, err)
		}
	}
}

func checkP256(t *testing.T, what string, c *x509.Certificate) {
	t.Helper()
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Errorf("%s: key %T, want ECDSA P-256", what, c.PublicKey)
	}
}

func TestInitRefusesExistingCA(t *testing.T) {
	dir := mustInit(t, NodeSpec{ID: "n1"})
	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	err := Init(dir, []NodeSpec{{ID: "n9"}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "ca.crt")) || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second Init: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	if string(before) != string(after) {
		t.Fatal("CA key changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "n9.crt")); err == nil {
		t.Fatal("refused Init still wrote a node certificate")
	}

	// Only the key left behind still blocks Init.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "ca.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir2, nil); err == nil || !strings.Contains(err.Error(), "ca.key") {
		t.Fatalf("Init over a lone ca.key: %v", err)
	}
}

func TestInitRejectsBadSpecs(t *testing.T) {
	for _, nodes := range [][]NodeSpec{
		{{ID: ""}},
		{{ID: "../x"}},
		{{ID: "ca"}},
		{{ID: "n1"}, {ID: "n1"}},
		{{ID: "n1", Hosts: []string{"a b"}}},
	} {
		dir := t.TempDir()
		if err := Init(dir, nodes); err == nil {
			t.Errorf("Init(%v) succeeded", nodes)
		}
		if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err == nil {
			t.Errorf("Init(%v) wrote a CA despite the error", nodes)
		}
	}
}

func TestIssue(t *testing.T) {
	dir := mustInit(t, NodeSpec{ID: "n1"})
	if err := Issue(dir, NodeSpec{ID: "n4", Hosts: []string{"n4.example"}}); err != nil {
		t.Fatal(err)
	}
	n4 := readCert(t, filepath.Join(dir, "n4.crt"))
	if n4.Subject.CommonName != "n4" || !slices.Equal(n4.DNSNames, []string{"n4.example"}) {
		t.Fatalf("n4: CN %q SANs %v", n4.Subject.CommonName, n4.DNSNames)
	}
	if err := n4.CheckSignatureFrom(readCert(t, filepath.Join(dir, "ca.crt"))); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir, "n4"); err != nil {
		t.Fatal(err)
	}
	err := Issue(dir, NodeSpec{ID: "n4"})
	if err == nil || !strings.Contains(err.Error(), "n4.crt") {
		t.Fatalf("Issue over an existing node: %v", err)
	}
	if err := Issue(t.TempDir(), NodeSpec{ID: "n5"}); err == nil || !strings.Contains(err.Error(), "ca.crt: file does not exist") {
		t.Fatalf("Issue without a CA: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := mustInit(t, NodeSpec{ID: "n1"}, NodeSpec{ID: "n2"})
	other := mustInit(t, NodeSpec{ID: "n1"})
	ca, n1crt, n1key := Files(dir, "n1")
	_, _, n2key := Files(dir, "n2")
	otherCA, otherCrt, otherKey := Files(other, "n1")

	// An expired certificate, signed by the right CA.
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	if err := issue(dir, caCert, caKey, NodeSpec{ID: "old"}, past, past.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, oldCrt, oldKey := Files(dir, "old")
	garbage := filepath.Join(t.TempDir(), "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")

	for _, tc := range []struct {
		name         string
		ca, crt, key string
		want1, want2 string
	}{
		{"missing CA", missing, n1crt, n1key, missing, "does not exist"},
		{"missing cert", ca, missing, n1key, missing, "does not exist"},
		{"missing key", ca, n1crt, filepath.Join(dir, "nokey.key"), "nokey.key", "does not exist"},
		{"garbage cert", ca, garbage, n1key, garbage, "no PEM CERTIFICATE"},
		{"garbage CA", garbage, n1crt, n1key, garbage, "no PEM CERTIFICATE"},
		{"key mismatch", ca, n1crt, n2key, n2key, "does not match certificate " + n1crt},
		{"other CA", ca, otherCrt, otherKey, otherCrt, "not a valid node certificate of the cluster CA in " + ca},
		{"other CA file", otherCA, n1crt, n1key, n1crt, "unknown authority"},
		{"node cert as CA", n1crt, n1crt, n1key, n1crt, "not a CA certificate"},
		{"expired", ca, oldCrt, oldKey, oldCrt, "expired on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.ca, tc.crt, tc.key)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tc.want1) || !strings.Contains(err.Error(), tc.want2) {
				t.Fatalf("Load: %v\nwant it to mention %q and %q", err, tc.want1, tc.want2)
			}
		})
	}
}

// serve accepts one TLS connection on 127.0.0.1 with cfg, writes "ok" after
// the handshake and reports the handshake's outcome.
func serve(t *testing.T, cfg *tls.Config) (addr string, result <-chan error, peer <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	res := make(chan error, 1)
	peerCh := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			res <- err
			return
		}
		peerCh <- PeerID(tc.ConnectionState())
		_, err = tc.Write([]byte("ok"))
		res <- err
	}()
	return ln.Addr().String(), res, peerCh
}

func TestHandshake(t *testing.T) {
	// The certificates name hosts that are not the dialled address: host
	// names are deliberately not checked.
	dir := mustInit(t, NodeSpec{ID: "n1", Hosts: []string{"n1.example"}}, NodeSpec{ID: "n2", Hosts: []string{"192.0.2.2"}})
	c1, err := LoadDir(dir, "n1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := LoadDir(dir, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if c1.MinVersion != tls.VersionTLS13 || c1.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("MinVersion %x ClientAuth %v", c1.MinVersion, c1.ClientAuth)
	}
	addr, res, peer := serve(t, c1)
	conn, err := tls.Dial("tcp", addr, c2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q: %v", buf, err)
	}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if p := <-peer; p != "n2" {
		t.Fatalf("server sees peer %q", p)
	}
	if p := PeerID(conn.ConnectionState()); p != "n1" {
		t.Fatalf("client sees peer %q", p)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("version %x", v)
	}
}

func TestForeignCARefused(t *testing.T) {
	dir := mustInit(t, NodeSpec{ID: "n1"})
	foreign := mustInit(t, NodeSpec{ID: "n1"}, NodeSpec{ID: "evil"})
	server, err := LoadDir(dir, "n1")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := LoadDir(foreign, "evil")
	if err != nil {
		t.Fatal(err)
	}

	// A foreign node does not accept the cluster's server certificate.
	addr, res, _ := serve(t, server)
	if c, err := tls.Dial("tcp", addr, evil); err == nil {
		c.Close()
		t.Fatal("foreign client completed the handshake")
	}
	if err := <-res; err == nil {
		t.Fatal("server accepted the foreign client")
	}

	// A client that trusts the cluster CA but presents a foreign
	// certificate is refused by the server.
	sneaky := evil.Clone()
	sneaky.RootCAs = server.RootCAs
	sneaky.InsecureSkipVerify = false
	sneaky.VerifyConnection = nil
	sneaky.ServerName = "n1"
	addr, res, _ = serve(t, server)
	if c, err := tls.Dial("tcp", addr, sneaky); err == nil {
		// TLS 1.3: the client finishes first; the refusal arrives as an alert.
		_, err = c.Read(make([]byte, 2))
		c.Close()
		if err == nil {
			t.Fatal("foreign client certificate accepted")
		}
	}
	if err := <-res; err == nil {
		t.Fatal("server accepted a foreign client certificate")
	}

	// A client without a certificate is refused.
	anon := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13} //nolint:gosec // test client
	addr, res, _ = serve(t, server)
	if c, err := tls.Dial("tcp", addr, anon); err == nil {
		_, err = c.Read(make([]byte, 2))
		c.Close()
		if err == nil {
			t.Fatal("client without certificate accepted")
		}
	}
	if err := <-res; err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("server: %v", err)
	}

	// A plain TCP client gets no answer but an alert.
	addr, res, _ = serve(t, server)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello, this is not TLS\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if strings.Contains(string(b), "ok") {
		t.Fatalf("plain client got %q", b)
	}
	if err := <-res; err == nil {
		t.Fatal("plain client accepted")
	}
}
