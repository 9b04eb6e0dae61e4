// Package grafana holds the Grafana dashboard over aTES's metrics; its test keeps the
// dashboard's queries in step with the metrics the README lists.
package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestDashboardFiltersByService: the dashboard has a service variable, and every ates_*
// series a panel queries is selected by it, since every service labels its metrics
// service="<name>" whether it runs alone or under `ates all`.
func TestDashboardFiltersByService(t *testing.T) {
	raw, err := os.ReadFile("ates.json")
	require.NoError(t, err)
	var dash struct {
		Templating struct{ List []struct{ Name string } }
		Panels     []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	require.Contains(t, vars, "service")
	selector := regexp.MustCompile(`ates_[a-z_]+(\{[^}]*\})?`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range selector.FindAllStringSubmatch(tg.Expr, -1) {
				require.Contains(t, m[1], `service=~"$service"`, "panel %q: %s", p.Title, m[0])
			}
			require.NotContains(t, tg.Expr, "job", "panel %q: a service is its label, not its scrape job", p.Title)
		}
	}
}

// TestReadmeListsEveryMetric: every metric the services define (a Name: or NewDesc with
// an ates_ name) has a row in the README's table.
func TestReadmeListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	defined := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(ates_[a-z_]+)"`)
	found := 0
	err = filepath.WalkDir("../../services", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range defined.FindAllSubmatch(src, -1) {
			found++
			require.Contains(t, string(readme), "| `"+string(m[1])+"` |", "%s defines %s", path, m[1])
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, found, 10, "the walk found the metrics")
}
