package tlstest

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Terminate listens on a loopback port, serves TLS there with conf, and forwards the
// decrypted bytes of each connection to target in plaintext: a TLS listener in front of
// a server that has none, such as this machine's RabbitMQ or PostgreSQL. before, if not
// nil, runs on each connection before the TLS handshake (see AcceptSSLRequest). It
// returns the listening address; everything is closed when the test ends.
func Terminate(t testing.TB, conf *tls.Config, target string, before func(net.Conn) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(c net.Conn) { mu.Lock(); open = append(open, c); mu.Unlock() }
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := lis.Accept()
			if err != nil {
				return
			}
			track(client)
			wg.Go(func() { forward(client, conf, target, before, track) })
		}
	})
	return lis.Addr().String()
}

func forward(client net.Conn, conf *tls.Config, target string, before func(net.Conn) error, track func(net.Conn)) {
	defer client.Close()
	if before != nil {
		if err := before(client); err != nil {
			return
		}
	}
	secure := tls.Server(client, conf)
	if err := secure.Handshake(); err != nil {
		return
	}
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	track(server)
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, secure); done <- struct{}{} }()
	go func() { _, _ = io.Copy(secure, server); done <- struct{}{} }()
	<-done
}

// sslRequestCode is PostgreSQL's SSLRequest: "I want TLS".
const sslRequestCode = 80877103

// AcceptSSLRequest answers PostgreSQL's SSLRequest with 'S' (go ahead with TLS), as a
// PostgreSQL server with ssl = on does, for use as Terminate's before.
func AcceptSSLRequest(c net.Conn) error {
	var msg [8]byte
	if _, err := io.ReadFull(c, msg[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(msg[:4]) != 8 || binary.BigEndian.Uint32(msg[4:]) != sslRequestCode {
		return errors.New("not an SSLRequest")
	}
	_, err := c.Write([]byte{'S'})
	return err
}
