package server_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/gen/openapi"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/server"
)

// The generated Swagger 2.0 file is what /openapi.json is made from: it must itself be
// a document a parser accepts.
func TestGeneratedSwaggerParses(t *testing.T) {
	t.Parallel()
	var doc openapi2.T
	require.NoError(t, doc.UnmarshalJSON(openapi.Swagger))
	require.Equal(t, "2.0", doc.Swagger)
	require.NotEmpty(t, doc.Paths)
}

// Not parallel: it sets server.Version, which the parallel tests' servers would read.
func TestOpenAPIDocument(t *testing.T) {
	server.Version = "v1.2.3-test"
	t.Cleanup(func() { server.Version = "" })
	srv, _, _, _ := startWith(t, server.Options{Public: []string{tasksv1.TaskService_ListTasks_FullMethodName}})

	status, body := get(t, "http://"+srv.HTTPAddr()+"/openapi.json")
	require.Equal(t, http.StatusOK, status, body)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(body))
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "a real OpenAPI 3 parser must accept the document")

	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), doc.OpenAPI)
	require.Equal(t, "aTES test API", doc.Info.Title)
	require.Equal(t, "v1.2.3-test", doc.Info.Version, "the build's version, not protoc-gen-openapiv2's placeholder")
	require.NotEmpty(t, doc.Servers)
	require.Equal(t, "/", doc.Servers[0].URL)

	bearer := doc.Components.SecuritySchemes["bearer"]
	require.NotNil(t, bearer)
	require.Equal(t, "http", bearer.Value.Type)
	require.Equal(t, "bearer", bearer.Value.Scheme)
	require.Equal(t, openapi3.SecurityRequirements{{"bearer": []string{}}}, doc.Security, "a token is needed unless an operation says otherwise")

	// Only this server's service: TaskService's paths, none of accounting's or auth's.
	require.NotZero(t, doc.Paths.Len())
	for path := range doc.Paths.Map() {
		require.True(t, strings.HasPrefix(path, "/v1/task"), "a path this server does not serve: %s", path)
	}
	require.Contains(t, doc.Components.Schemas, "v1Task")
	require.Contains(t, doc.Components.Schemas, "rpcStatus")
	require.NotContains(t, doc.Components.Schemas, "v1LoginRequest", "another service's messages")
	require.NotContains(t, doc.Components.Schemas, "v1GetBalanceResponse", "another service's messages")
	var list, create *openapi3.Operation
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			switch op.OperationID {
			case "TaskService_ListTasks":
				list = op
			case "TaskService_CreateTask":
				create = op
			}
		}
	}
	require.NotNil(t, list)
	require.NotNil(t, create)
	require.NotNil(t, list.Security, "a public method needs no token")
	require.Empty(t, *list.Security)
	require.Nil(t, create.Security, "CreateTask inherits the document's Bearer requirement")
}

// /docs works offline: the page and everything it loads come from the service itself.
func TestDocsPage(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := start(t, nil)
	base, err := url.Parse("http://" + srv.HTTPAddr() + "/docs/")
	require.NoError(t, err)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get("http://" + srv.HTTPAddr() + "/docs")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/docs/", resp.Header.Get("Location"))

	resp, err = http.Get(base.String())
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", "the browser may load nothing from elsewhere")
	status, page := get(t, base.String())
	require.Equal(t, http.StatusOK, status)

	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	require.Len(t, refs, 3, "the stylesheet, the bundle and init.js: %s", page)
	for _, ref := range refs {
		u, err := base.Parse(ref[1])
		require.NoError(t, err)
		require.Equal(t, base.Host, u.Host, "%s is not served by the service", ref[1])
		status, asset := get(t, u.String())
		require.Equal(t, http.StatusOK, status, u.String())
		require.NotEmpty(t, asset, u.String())
		if strings.HasSuffix(u.Path, "/init.js") {
			spec := regexp.MustCompile(`url: "([^"]+)"`).FindStringSubmatch(asset)
			require.NotNil(t, spec, asset)
			specURL, err := base.Parse(spec[1])
			require.NoError(t, err)
			require.Equal(t, "/openapi.json", specURL.Path)
			status, _ := get(t, specURL.String())
			require.Equal(t, http.StatusOK, status, "the page's document")
		}
	}
}
