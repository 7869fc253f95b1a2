package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPool: a PEM certificate file makes a pool; a file without one, or
// no file, is an error naming it.
func TestPool(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "bad.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := Pool(good); err != nil {
		t.Errorf("Pool(a CA file) = %v", err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "missing.pem")} {
		if _, err := Pool(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Pool(%s) = %v, want an error naming the file", p, err)
		}
	}
}
