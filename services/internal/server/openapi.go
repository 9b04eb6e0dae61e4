package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ates/ates/gen/openapi"
)

// Version is the build's version, as /openapi.json reports it. Set it at link time
// (go build -ldflags "-X github.com/ates/ates/services/internal/server.Version=v1.2.0");
// left empty, the module version or VCS revision Go stamps into the binary is used.
var Version string

// buildVersion is Version, else what the Go toolchain recorded about the build.
func buildVersion() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "dev"
	}
	if modified == "true" {
		rev += "+dirty"
	}
	return "dev-" + rev
}

// bearerScheme names the security scheme every operation but the public ones requires.
const bearerScheme = "bearer"

// openAPIDoc builds one service's OpenAPI 3 document from the merged Swagger 2.0 file
// protoc-gen-openapiv2 writes: only the operations of the gRPC services registered on
// this server (a service's port answers no other path), converted to OpenAPI 3 (for
// "servers" and an HTTP bearer scheme), titled, versioned, with the Bearer scheme
// required except by the public methods. The server is relative ("/"): the document
// describes whichever host and scheme served it, directly or behind a proxy.
//
//nolint:contextcheck // built once for every request to come, so no request's context fits
func openAPIDoc(name string, services []string, public map[string]bool, version string) (*openapi3.T, error) {
	var doc2 openapi2.T
	if err := json.Unmarshal(openapi.Swagger, &doc2); err != nil {
		return nil, fmt.Errorf("read the Swagger document: %w", err)
	}
	short := map[string]bool{} // "AccountingService": the tag protoc-gen-openapiv2 gives
	publicOps := map[string]bool{}
	for _, full := range services {
		short[full[strings.LastIndexByte(full, '.')+1:]] = true
	}
	for m := range public { // "/ates.auth.v1.AuthService/Login" → "AuthService_Login"
		svc, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		if ok {
			publicOps[svc[strings.LastIndexByte(svc, '.')+1:]+"_"+method] = true
		}
	}
	for path, item := range doc2.Paths {
		for method, op := range item.Operations() {
			if !slices.ContainsFunc(op.Tags, func(t string) bool { return short[t] }) {
				item.SetOperation(method, nil)
			}
		}
		if len(item.Operations()) == 0 {
			delete(doc2.Paths, path)
		}
	}
	doc2.Tags = slices.DeleteFunc(doc2.Tags, func(t *openapi3.Tag) bool { return !short[t.Name] })
	if err := keepUsedDefinitions(&doc2); err != nil {
		return nil, err
	}

	doc, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("convert the Swagger document to OpenAPI 3: %w", err)
	}
	doc.Info = &openapi3.Info{
		Title:       "aTES " + name + " API",
		Description: "The REST API of the aTES " + name + " service (the same calls are served over gRPC).",
		Version:     version,
	}
	doc.Servers = openapi3.Servers{{URL: "/", Description: "this service"}}
	if doc.Components == nil {
		doc.Components = &openapi3.Components{}
	}
	doc.Components.SecuritySchemes = openapi3.SecuritySchemes{
		bearerScheme: &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().
			WithBearerFormat("opaque API token").
			WithDescription("An API token from AuthService.Login, sent as \"Authorization: Bearer <token>\".")},
	}
	doc.Security = openapi3.SecurityRequirements{{bearerScheme: []string{}}}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if publicOps[op.OperationID] {
				op.Security = &openapi3.SecurityRequirements{} // no token needed
			}
		}
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	return doc, nil
}

// definitionRef matches a reference to a Swagger 2.0 definition.
var definitionRef = regexp.MustCompile(`"#/definitions/([^"]+)"`)

// keepUsedDefinitions drops the definitions no kept path uses, directly or through other
// definitions: the other services' messages.
func keepUsedDefinitions(doc *openapi2.T) error {
	used := map[string]bool{}
	var follow func(v any) error
	follow = func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("walk the Swagger document: %w", err)
		}
		for _, m := range definitionRef.FindAllSubmatch(b, -1) {
			name := string(m[1])
			if def, ok := doc.Definitions[name]; ok && !used[name] {
				used[name] = true
				if err := follow(def); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := follow(doc.Paths); err != nil {
		return err
	}
	maps.DeleteFunc(doc.Definitions, func(name string, _ *openapi2.SchemaRef) bool { return !used[name] })
	return nil
}

// openAPIHandler serves the service's document, built on the first request.
func (s *Server) openAPIHandler() http.Handler {
	body := sync.OnceValues(func() ([]byte, error) {
		var services []string
		for name := range s.grpc.GetServiceInfo() {
			services = append(services, name)
		}
		doc, err := openAPIDoc(s.opts.Name, services, s.public, buildVersion())
		if err != nil {
			return nil, err
		}
		return json.MarshalIndent(doc, "", "  ")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b, err := body()
		if err != nil {
			s.log.Error("serve /openapi.json", "err", err)
			http.Error(w, "the OpenAPI document could not be built", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}
