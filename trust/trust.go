// Package trust owns the certificate authorities the registry trusts when
// it is a client: of an S3 endpoint, a mirror's upstream, a replication
// remote.
package trust

import (
	"crypto/x509"
	"fmt"
	"os"
)

// Pool returns the system's roots plus the certificates in the PEM file
// at path. Adding a private CA keeps the public ones trusted.
func Pool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}
