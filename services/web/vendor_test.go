package web

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVendoredFilesMatchVERSIONS: every vendored library is the file `make web-vendor`
// fetched, byte for byte: an edited or swapped file fails here.
func TestVendoredFilesMatchVERSIONS(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("static", "vendor")
	f, err := os.Open(filepath.Join(dir, "VERSIONS"))
	require.NoError(t, err)
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line) // file name version sha256 license
		require.Len(t, fields, 5, "VERSIONS line %q", line)
		file, sum := fields[0], fields[3]
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		got := sha256.Sum256(b)
		require.Equal(t, sum, hex.EncodeToString(got[:]), "%s is not the file VERSIONS lists: run make web-vendor", file)
		listed[file] = true
	}
	require.NoError(t, sc.Err())
	require.Equal(t, map[string]bool{"htmx.min.js": true, "chart.umd.min.js": true}, listed)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".js") {
			require.True(t, listed[e.Name()], "%s is vendored but not in VERSIONS", e.Name())
		}
	}
	for _, license := range []string{"htmx.LICENSE", "chart.js.LICENSE.md"} {
		_, err := os.Stat(filepath.Join(dir, license))
		require.NoError(t, err, "the license travels with the library")
	}
}
