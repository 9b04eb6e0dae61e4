package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// docsUI is Swagger UI (docsui/README.md says which version), embedded so that /docs
// works without reaching the internet.
//
//go:embed docsui/index.html docsui/init.js docsui/swagger-ui-bundle.js docsui/swagger-ui.css
var docsUI embed.FS

// docsCSP lets the page load only what this service serves; Swagger UI sets inline
// styles and shows data: images.
const docsCSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

// docsHandler serves the documentation page under /docs/.
func docsHandler() http.Handler {
	sub, err := fs.Sub(docsUI, "docsui")
	if err != nil {
		panic(err) // the embedded directory is there: go:embed checked it at build time
	}
	files := http.StripPrefix("/docs/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", docsCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
