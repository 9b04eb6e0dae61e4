package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// The REST gateway calls the service's own gRPC port from 127.0.0.1, so the gRPC peer
// of a REST call is the gateway, not the client. The gateway therefore sends the
// client's address in metadata, with a mark only this process knows: a direct gRPC
// client can send the same metadata keys, but not the mark, and is then taken for the
// address it connects from. (An HTTP client cannot set either key through
// Grpc-Metadata-* headers: the gateway's own metadata replaces what headers say under
// the same key.)
const (
	clientAddrMD  = "ates-client-addr"
	gatewayMarkMD = "ates-gateway-mark"
)

// gatewayMark is this process's mark, random at start-up.
var gatewayMark = rand.Text()

// ClientAddr is the address the call came from: for a REST call the HTTP client's
// (see TrustedProxies), for a gRPC call its peer's. It is the zero Addr when neither
// is known.
func ClientAddr(ctx context.Context) netip.Addr {
	md, _ := metadata.FromIncomingContext(ctx)
	if mark := md.Get(gatewayMarkMD); len(mark) == 1 && subtle.ConstantTimeCompare([]byte(mark[0]), []byte(gatewayMark)) == 1 {
		if addr := md.Get(clientAddrMD); len(addr) == 1 {
			a, _ := netip.ParseAddr(addr[0])
			return a.Unmap()
		}
		return netip.Addr{}
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// gatewayMetadata is the gateway's metadata annotator: the HTTP client's address (empty
// when unknown: the key is always set, so that no header can fill it) and this
// process's mark.
func (s *Server) gatewayMetadata(_ context.Context, r *http.Request) metadata.MD {
	addr := ""
	if a := httpClientAddr(r, s.opts.TrustedProxies); a.IsValid() {
		addr = a.String()
	}
	return metadata.Pairs(gatewayMarkMD, gatewayMark, clientAddrMD, addr)
}

// httpClientAddr is the address of an HTTP request's client: its peer, unless the peer
// is a trusted proxy. Then X-Forwarded-For is read from the right (each proxy appends
// the address it got the request from), skipping trusted proxies, and the first
// address that is not one is the client: addresses further left were written by
// whoever sent them, and are not believed. A value that is not an address ends the
// walk at the proxy that passed it on.
func httpClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = hop.Unmap()
		if !isTrusted(addr, trusted) {
			return addr
		}
	}
	return addr
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
