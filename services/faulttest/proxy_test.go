//go:build faulttest

package faulttest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// proxies is the in-process Toxiproxy every scenario puts between the services and
// PostgreSQL, RabbitMQ and SMTP. No API port is opened: the suite drives it directly.
type proxies struct {
	server *toxiproxy.ApiServer
}

func newProxies() *proxies {
	return &proxies{server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
}

// proxy is one TCP proxy: a group of clients (say, the consumers' PostgreSQL
// connections) that faults can target together.
type proxy struct {
	p *toxiproxy.Proxy
}

// add starts a proxy on a free loopback port in front of upstream, removed at cleanup.
func (ps *proxies) add(t *testing.T, name, upstream string) *proxy {
	t.Helper()
	p := toxiproxy.NewProxy(ps.server, name, "127.0.0.1:0", upstream)
	if err := ps.server.Collection.Add(p, true); err != nil {
		t.Fatalf("start proxy %s to %s: %v", name, upstream, err)
	}
	t.Cleanup(func() { _ = ps.server.Collection.Remove(name) })
	return &proxy{p: p}
}

// Addr is where clients connect; it stays the same across disable and enable.
func (p *proxy) Addr() string { return p.p.Listen }

// disable closes the listener and every connection through the proxy: the upstream
// looks down (connection refused) until enable.
func (p *proxy) disable() { p.p.Stop() }

// enable listens again on the same address.
func (p *proxy) enable(t *testing.T) {
	t.Helper()
	if err := p.p.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		t.Fatalf("enable proxy %s: %v", p.p.Name, err)
	}
}

// toxic adds a toxic (see https://github.com/Shopify/toxiproxy#toxics) and returns the
// function that removes it.
func (p *proxy) toxic(t *testing.T, name, typ, stream string, attrs string) func() {
	t.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		t.Fatalf("add toxic %s to proxy %s: %v", name, p.p.Name, err)
	}
	removed := false
	remove := func() {
		if !removed {
			removed = true
			_ = p.p.Toxics.RemoveToxic(context.Background(), name)
		}
	}
	t.Cleanup(remove)
	return remove
}

// latency delays every chunk the upstream sends back by ms milliseconds, so each
// round trip (a query and its answer, an SMTP command and its reply) takes that much
// longer, while the upstream still sees requests at once.
func (p *proxy) latency(t *testing.T, ms int) func() {
	t.Helper()
	return p.toxic(t, "latency", "latency", "downstream", fmt.Sprintf(`{"latency":%d,"jitter":0}`, ms))
}

// hang stops data in the given directions while connections stay open (a timeout toxic
// with timeout 0); removing it closes the connections it held.
func (p *proxy) hang(t *testing.T, streams ...string) func() {
	t.Helper()
	var removes []func()
	for _, s := range streams {
		removes = append(removes, p.toxic(t, "hang_"+s, "timeout", s, `{"timeout":0}`))
	}
	return func() {
		for _, r := range removes {
			r()
		}
	}
}
