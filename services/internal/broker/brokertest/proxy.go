package brokertest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/ates/ates/services/internal/broker"
)

// Proxy is a TCP proxy in front of the test broker that a test can make misbehave the
// way networks and brokers do: hang (connections stay open but nothing passes, as with
// a hung broker or a silent partition), cut (every connection drops) or refuse (the
// broker is down). It starts forwarding.
type Proxy struct {
	ln     net.Listener
	target string
	url    string

	mu      sync.Mutex
	mode    proxyMode
	cuts    int           // how many times Cut ran; a connection from before a cut is done
	changed chan struct{} // closed and replaced whenever mode or cuts change
	conns   map[net.Conn]struct{}
}

type proxyMode int

const (
	forwarding proxyMode = iota
	hanging
	refusing
)

// NewProxy starts a proxy to the test broker; it is closed when the test ends.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	u, err := url.Parse(broker.TestURL())
	if err != nil {
		t.Fatalf("parse broker URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &Proxy{ln: ln, target: u.Host, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	u.Host = ln.Addr().String()
	p.url = u.String()
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
	})
	return p
}

// URL is the AMQP URL that reaches the broker through the proxy.
func (p *Proxy) URL() string { return p.url }

// Hang stops passing bytes either way on every connection, open or new, without
// closing any: what is sent is held back, as by a broker that stopped reading.
func (p *Proxy) Hang() { p.setMode(hanging) }

// Forward passes bytes again, including those held back while hanging.
func (p *Proxy) Forward() { p.setMode(forwarding) }

// Refuse drops every connection and closes new ones at once, as a stopped broker does.
func (p *Proxy) Refuse() {
	p.setMode(refusing)
	p.Cut()
}

// Cut closes every connection through the proxy.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.cuts++
	p.signal()
}

func (p *Proxy) setMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	p.signal()
}

// signal wakes the pipes waiting in passing; the caller holds mu.
func (p *Proxy) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// passing blocks while the proxy hangs and reports whether bytes of a connection made
// after cut number cuts may pass.
func (p *Proxy) passing(cuts int) bool {
	for {
		p.mu.Lock()
		mode, changed, cut := p.mode, p.changed, p.cuts != cuts
		p.mu.Unlock()
		switch {
		case cut, mode == refusing:
			return false
		case mode == forwarding:
			return true
		}
		<-changed
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	p.mu.Lock()
	refused := p.mode == refusing
	p.mu.Unlock()
	if refused {
		_ = client.Close()
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	cuts := p.cuts
	p.mu.Unlock()
	go p.pipe(server, client, cuts)
	p.pipe(client, server, cuts)
}

// pipe copies from src to dst while the proxy lets bytes pass, then closes both.
func (p *Proxy) pipe(dst, src net.Conn, cuts int) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && (!p.passing(cuts) || writeAll(dst, buf[:n]) != nil) {
			return
		}
		if err != nil {
			return
		}
	}
}

func writeAll(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}
