package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// CORS answers for browsers: what a page from another origin may call. Only the
// allowed origins get CORS headers; requests carry a Bearer token, never cookies, so no
// credentials are allowed.
const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, traceparent, tracestate"
	corsExpose  = "Retry-After"
	corsMaxAge  = 600 // seconds a browser may cache a preflight answer
)

// withCORS lets pages from origins (exact "scheme://host[:port]" values, or "*" for any)
// call next from a browser, and answers their preflight OPTIONS requests itself. With
// no origins it is next: no CORS headers at all, so browsers keep other origins out.
func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if !anyOrigin && !slices.Contains(origins, origin) {
			if isPreflight(r) {
				w.WriteHeader(http.StatusForbidden) // no Allow-Origin: the browser refuses
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if isPreflight(r) {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExpose)
		next.ServeHTTP(w, r)
	})
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && strings.TrimSpace(r.Header.Get("Access-Control-Request-Method")) != ""
}
