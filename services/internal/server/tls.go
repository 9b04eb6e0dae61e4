package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// gatewayDial is how the REST gateway reaches this server's own gRPC port: plaintext
// when the server is, and otherwise TLS trusting exactly the server's own certificate
// under a name it carries, so any certificate works, whatever CA signed it.
func gatewayDial(serverTLS *tls.Config) (grpc.DialOption, error) {
	if serverTLS == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	cert := serverTLS.Certificates[0]
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse own TLS certificate: %w", err)
		}
	}
	var name string
	switch {
	case len(leaf.DNSNames) > 0:
		name = leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		name = leaf.IPAddresses[0].String()
	default:
		return nil, errors.New("own TLS certificate names no host (no DNS or IP subject alternative name)")
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12,
	})), nil
}
