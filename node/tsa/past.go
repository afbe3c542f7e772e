package tsa

import (
	"crypto/x509"
	"fmt"

	"github.com/tsnode/tsnode/protocol"
)

// retire adds certs (what a root or chain file held before Ensure
// replaces it) to the past file, after those it holds and without
// repeating one, durably, before the file they came from is replaced: a
// crash in between leaves a certificate both current and past, never
// neither. A past file that does not parse is an error, not replaced: it
// is what keeps old tokens verifiable.
func (c *Config) retire(k *Keys, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return nil
	}
	path := PastPath(c.KeysDir, c.ID)
	past, err := readCerts(path, "past certificates")
	if err != nil {
		return fmt.Errorf("%w; it holds the certificates of tokens signed before the current ones: repair it rather than remove it", err)
	}
	n := len(past)
	for _, cert := range certs {
		if !holds(past, cert) {
			past = append(past, cert)
		}
	}
	if len(past) == n {
		return nil
	}
	if err := writePublic(path, protocol.EncodeCertsPEM(past...)); err != nil {
		return err
	}
	for _, m := range k.Made {
		if m == path {
			return nil
		}
	}
	k.Made = append(k.Made, path)
	return nil
}

func holds(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, h := range certs {
		if h.Equal(c) {
			return true
		}
	}
	return false
}
