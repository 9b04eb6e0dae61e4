package web_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/browsertest"
)

// TestDashboard runs the pages in headless Chromium against the whole system (see
// startSystem), one user's story per subtest, in order: each leaves screenshots of its
// steps in .cache/screenshots/TestDashboard-<subtest>/.
func TestDashboard(t *testing.T) {
	s := startSystem(t)

	t.Run("the seeded money is what the APIs say", func(t *testing.T) {
		token := s.login(t, s.admin)
		var earnings struct {
			Days []struct {
				Date     string
				Earnings string
			}
			Total string
		}
		s.call(t, http.MethodGet, s.analytics+"/v1/analytics/company?from="+s.days[0]+"&to="+s.days[3], token, nil, http.StatusOK, &earnings)
		t.Logf("%+v", earnings)
		b := browsertest.Start(t)
		require.Equal(t, http.StatusOK, b.Go(s.analytics+"/docs"))
		b.Wait(".swagger-ui")
		b.Shot("docs")
	})
}
