// Package tlsconf turns a TLS section of the configuration (IDOL's
// SSLConfig keys: SSLMethod, SSLCertificate, SSLPrivateKey,
// SSLPrivateKeyPassword, SSLCACertificate, SSLCheckCertificate) into a
// crypto/tls configuration: for a listening port (the ACI port, the
// service port) or for outgoing connections (CFS ingestion over HTTPS).
//
// TLS 1.2 is the oldest protocol either side speaks. A listening port with
// SSLCACertificate asks clients for a certificate signed by it: required
// with SSLCheckCertificate=true (the default), optional otherwise. Only a
// verified certificate names a client's SSLIdentities (package auth).
// Outgoing connections always verify the server's certificate, against
// SSLCACertificate when given, else the system's authorities.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/secret"
)

// KeyError says which key of the section is at fault.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// ConfigError wraps an error of Server or Client as the configuration error
// it is: the file, the line of the key at fault, the section and the key.
func ConfigError(file string, o *config.SSLOptions, err error) error {
	var ke *KeyError
	if errors.As(err, &ke) {
		return &config.Error{File: file, Line: o.KeyLine(ke.Key), Section: o.Section, Key: ke.Key, Err: ke.Err}
	}
	return &config.Error{File: file, Line: o.Line, Section: o.Section, Err: err}
}

// Server returns the configuration of a listening port. key decrypts an
// SSLPrivateKeyPassword given in IDOL's encrypted-password form (nil when
// none is).
func Server(o *config.SSLOptions, key *secret.Key) (*tls.Config, error) {
	c, err := base(o)
	if err != nil {
		return nil, err
	}
	if o.Certificate == "" {
		return nil, &KeyError{"SSLCertificate", errors.New("a listening port needs its certificate (SSLCertificate and SSLPrivateKey)")}
	}
	cert, err := keyPair(o, key)
	if err != nil {
		return nil, err
	}
	c.Certificates = []tls.Certificate{cert}
	if o.CACertificate != "" {
		pool, err := caPool(o.CACertificate)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if o.CheckCertificate {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c, nil
}

// Client returns the configuration of outgoing connections: the server's
// certificate is checked against SSLCACertificate (the system's
// authorities when not given); SSLCertificate and SSLPrivateKey, when
// given, are sent as the client certificate.
func Client(o *config.SSLOptions, key *secret.Key) (*tls.Config, error) {
	c, err := base(o)
	if err != nil {
		return nil, err
	}
	if o.CACertificate != "" {
		if c.RootCAs, err = caPool(o.CACertificate); err != nil {
			return nil, err
		}
	}
	if o.Certificate != "" {
		cert, err := keyPair(o, key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func base(o *config.SSLOptions) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	switch o.Method {
	case "", "Negotiate":
	case "TLSV1.2":
		c.MaxVersion = tls.VersionTLS12
	case "TLSV1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return nil, &KeyError{"SSLMethod", fmt.Errorf("%q is not an SSLMethod (expected Negotiate, TLSV1.2 or TLSV1.3)", o.Method)}
	}
	return c, nil
}

// maxPEMBytes bounds a PEM file a TLS section names: a CA bundle of every
// public authority is about 200 KiB.
const maxPEMBytes = 16 << 20

func caPool(path string) (*x509.CertPool, error) {
	data, err := readfile.Regular(path, maxPEMBytes)
	if err != nil {
		return nil, &KeyError{"SSLCACertificate", err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, &KeyError{"SSLCACertificate", fmt.Errorf("%s holds no PEM certificate", path)}
	}
	return pool, nil
}

// keyPair loads SSLCertificate and SSLPrivateKey, decrypting a key in the
// legacy encrypted PEM form (Proc-Type: 4,ENCRYPTED) with
// SSLPrivateKeyPassword.
func keyPair(o *config.SSLOptions, key *secret.Key) (tls.Certificate, error) {
	certPEM, err := readfile.Regular(o.Certificate, maxPEMBytes)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLCertificate", err}
	}
	keyPEM, err := readfile.Regular(o.PrivateKey, maxPEMBytes)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", err}
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type == "CERTIFICATE" {
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s holds no PEM private key", o.PrivateKey)}
	}
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s is an encrypted PKCS #8 key, which this server cannot read; "+
			"convert it to the traditional encrypted form (openssl pkey -in KEY -traditional -aes256) or store it unencrypted, readable by the connector's user only", o.PrivateKey)}
	case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck // the legacy form is what IDOL's SSLPrivateKeyPassword decrypts
		if o.PrivateKeyPassword == "" {
			return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s is encrypted: give its password in SSLPrivateKeyPassword", o.PrivateKey)}
		}
		pw := o.PrivateKeyPassword
		if secret.IsEncrypted(pw) {
			if key == nil {
				return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", errors.New("the password is in the encrypted form but no [Security] AESKeyFile could be read")}
			}
			if pw, err = key.Decrypt(pw); err != nil {
				return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", err}
			}
		}
		der, err := x509.DecryptPEMBlock(block, []byte(pw)) //nolint:staticcheck // see above
		if err != nil {
			return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", fmt.Errorf("does not decrypt %s", o.PrivateKey)}
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
	case o.PrivateKeyPassword != "":
		return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", fmt.Errorf("%s is not encrypted; remove SSLPrivateKeyPassword", o.PrivateKey)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLCertificate", fmt.Errorf("%s and %s: %w", o.Certificate, o.PrivateKey, err)}
	}
	return cert, nil
}
