// Package grafana holds the Grafana dashboard over aTES's metrics; its test keeps the
// dashboard's queries in step with the metrics the README lists.
package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

var metricName = regexp.MustCompile(`ates_[a-z_]+`)

// TestDashboardQueriesNameListedMetrics: ates.json is valid JSON and every ates_* name in
// a panel's query is a metric of the README's table (histogram series by their base name).
func TestDashboardQueriesNameListedMetrics(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(ates_[a-z_]+)` \\|").FindAllSubmatch(readme, -1) {
		listed[string(m[1])] = true
	}
	require.NotEmpty(t, listed, "the README's metrics table")

	raw, err := os.ReadFile("ates.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			require.NotEmpty(t, names, "panel %q queries no ates_ metric", p.Title)
			for _, n := range names {
				base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(n, "")
				require.True(t, listed[n] || listed[base], "panel %q queries %s, which the README does not list", p.Title, n)
			}
		}
	}
}
