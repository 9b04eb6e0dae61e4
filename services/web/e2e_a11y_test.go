package web_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/browsertest"
)

// everyPageIsAccessible audits every page, as each role sees it with the seeded data on
// it, with axe-core against WCAG 2 A and AA (labels, names, contrast, landmarks,
// language): the "basic accessibility", checked rather than promised.
func (s *system) everyPageIsAccessible(t *testing.T) {
	anon := browsertest.Start(t)
	require.Equal(t, http.StatusOK, anon.Go(s.web+"/login"))
	anon.Accessible("/login")

	for _, tc := range []struct {
		who   user
		home  string
		pages []string
	}{
		{s.admin, "/admin", []string{
			"/admin?from=" + s.days[0] + "&to=" + s.days[3],
			"/tasks/" + s.topTask(t),
		}},
		{s.accountant, "/accounting", []string{
			"/accounting?date=" + s.days[3] + "&worker_id=" + s.bob.ID,
		}},
		{s.manager, "/manager", nil},
		{s.bob, "/worker", []string{
			"/worker?date=" + s.days[2],
			"/admin", // the refusal page
		}},
	} {
		b := browsertest.Start(t)
		s.logIn(t, b, tc.who, tc.home)
		b.Accessible(tc.home + " as " + tc.who.Name)
		for _, p := range tc.pages {
			b.Go(s.web + p)
			b.Wait("main")
			b.Accessible(p + " as " + tc.who.Name)
		}
		b.Shot("audited as " + tc.who.Name)
	}
}
