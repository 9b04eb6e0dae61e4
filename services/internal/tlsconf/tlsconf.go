// Package tlsconf loads the certificates aTES services serve with and the CAs they trust
// when they call each other or the broker, in one place for every service.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// minVersion is TLS 1.2, the oldest version without known protocol breaks and the
// oldest gRPC accepts.
const minVersion = tls.VersionTLS12

// Server loads the PEM certificate (chain) and key a service serves with; it returns nil
// when both file names are empty, meaning plaintext.
func Server(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minVersion}, nil
}

// Client trusts the PEM CA certificates in caFile (and no others) for calls to other
// services; it returns nil when caFile is empty, meaning plaintext.
func Client(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile) //nolint:gosec // G304: the CA file is the operator's setting (ATES_TLS_CA_FILE)
	if err != nil {
		return nil, fmt.Errorf("read TLS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: minVersion}, nil
}

// GRPCDial is the transport a gRPC client uses: TLS trusting caFile, or plaintext when
// caFile is empty.
func GRPCDial(caFile string) (grpc.DialOption, error) {
	conf, err := Client(caFile)
	if err != nil {
		return nil, err
	}
	if conf == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(conf)), nil
}
