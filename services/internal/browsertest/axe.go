package browsertest

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"
)

// axeVersion and axeSHA256 say which axe-core axe/axe.min.js is (make web-vendor fetches
// it from the npm registry; its license, MPL-2.0, is axe/LICENSE). It runs only inside
// the test browser, never in a page the services serve.
const (
	axeVersion = "4.14.1"
	axeSHA256  = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
)

//go:embed axe/axe.min.js
var axeSource string

// axeRules are the rule sets an audit applies: WCAG 2.0, 2.1 and 2.2, levels A and AA
// (labels, names of buttons and links, contrast, landmarks, language, ...).
const axeRules = `["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]`

// Violation is one failed axe rule: what it checks, how bad, and the elements that fail it.
type Violation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// Accessible audits the page b shows (see Violations) and fails the test with every
// violation: rule, impact, elements; what names the page in the message.
func (b *Browser) Accessible(what string) {
	b.t.Helper()
	found := b.Violations()
	if len(found) == 0 {
		return
	}
	var msg strings.Builder
	for _, v := range found {
		fmt.Fprintf(&msg, "\n  %s (%s): %s: %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
	}
	b.shot("inaccessible " + what)
	b.t.Errorf("%s: %d accessibility violations (axe-core %s, WCAG 2 A/AA):%s", what, len(found), axeVersion, msg.String())
}

// Violations audits the page b shows with axe-core against WCAG 2 A and AA. The script
// is injected through DevTools, which the pages' Content-Security-Policy does not
// govern; the pages themselves load nothing new.
func (b *Browser) Violations() []Violation {
	b.t.Helper()
	if sum := sha256.Sum256([]byte(axeSource)); hex.EncodeToString(sum[:]) != axeSHA256 {
		b.t.Fatalf("browsertest/axe/axe.min.js is not axe-core %s as vendored: run make web-vendor", axeVersion)
	}
	if !Evaluate[bool](b, "typeof window.axe === 'object'") {
		Evaluate[bool](b, "(() => {"+axeSource+"\n; return typeof window.axe === 'object' })()")
	}
	return Evaluate[[]Violation](b, `axe.run(document, {runOnly: {type: "tag", values: `+axeRules+`}}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
			targets: v.nodes.map(n => n.target.join(" "))})))`)
}
