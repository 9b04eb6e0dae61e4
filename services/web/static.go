package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// contentTypes are the static files' types, fixed here rather than read from the
// system's mime.types, which may say otherwise.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".ico": "image/x-icon",
}

// asset is one embedded static file, with its ETag computed once.
type asset struct {
	body  []byte
	etag  string
	ctype string
}

// loadAssets reads every file of fsys.
func loadAssets(fsys fs.FS) (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "text/plain; charset=utf-8" // VERSIONS, the license files
		}
		out[p] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, ctype: ctype}
		return nil
	})
	return out, err
}

// serveStatic serves /static/<file> from the embedded files: revalidated on every use
// (the ETag makes that a 304), as the names carry no version.
func (h *handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := h.static[strings.TrimPrefix(r.URL.Path, "/static/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "public, no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
