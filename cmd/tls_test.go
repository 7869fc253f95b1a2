package cmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their paths with the certificate.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "nora test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile, cert
}

// TestServeTLS serves HTTPS with the configured certificate and key.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir)
	config := filepath.Join(dir, "nora.toml")
	os.WriteFile(config, fmt.Appendf(nil, `
[server]
listen = "127.0.0.1:0"
tls_cert = %q
tls_key = %q
[storage]
root = %q
[log]
format = "json"
`, certFile, keyFile, filepath.Join(dir, "data")), 0o600)

	line, stop := serveConfig(t, config)
	if line["tls"] != true {
		t.Errorf("listening line tls = %v, want true", line["tls"])
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + line["addr"].(string) + "/v2/")
	if err != nil {
		t.Fatalf("GET over TLS = %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("GET /v2/ over TLS = %d (tls %v), want 200 over TLS", resp.StatusCode, resp.TLS != nil)
	}

	// A renewed certificate in the same files is served after a reload.
	_, _, renewed := writeCert(t, dir)
	if out, err := run(t, "reload", "-c", config); err != nil {
		t.Fatalf("registry reload = %q, %v", out, err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(renewed)
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err = client.Get("https://" + line["addr"].(string) + "/v2/")
	if err != nil {
		t.Fatalf("GET over TLS with the renewed certificate = %v", err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Errorf("serve = %v, want clean shutdown", err)
	}
}
