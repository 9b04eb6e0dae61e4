package mailsender

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"

	eventsv1 "github.com/ates/ates/gen/events/v1"
)

// summary is what both bodies of a day's mail show.
type summary struct {
	Name, Date                                     string
	Opening, Rewards, Fees, Closing, Payout, Carry int64
}

func summaryOf(ev *eventsv1.SendEmail) summary {
	return summary{
		Name: ev.GetName(), Date: ev.GetDate(),
		Opening: ev.GetOpening(), Rewards: ev.GetRewards(), Fees: ev.GetFees(),
		Closing: ev.GetClosing(), Payout: ev.GetPayout(), Carry: ev.GetCarry(),
	}
}

// subject is the mail's subject line.
func subject(s summary) string { return fmt.Sprintf("Your aTES summary for %s", s.Date) }

var textBody = texttemplate.Must(texttemplate.New("text").Parse(`Hello {{.Name}},

here is your aTES account for {{.Date}}.

  Opening balance  {{printf "%6d" .Opening}}
  Rewards          {{printf "%6d" .Rewards}}
  Fees             {{printf "%6d" .Fees}}
  Closing balance  {{printf "%6d" .Closing}}

{{if gt .Payout 0}}Paid out to you: {{.Payout}}. The next day starts at 0.
{{- else if lt .Carry 0}}Nothing was paid out. Carried over to the next day: {{.Carry}}.
{{- else}}Nothing was paid out and nothing is carried over.{{end}}

aTES
`))

var htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html>
<body style="font-family: sans-serif">
<p>Hello {{.Name}},</p>
<p>here is your aTES account for <strong>{{.Date}}</strong>.</p>
<table cellpadding="4">
<tr><td>Opening balance</td><td align="right">{{.Opening}}</td></tr>
<tr><td>Rewards</td><td align="right">{{.Rewards}}</td></tr>
<tr><td>Fees</td><td align="right">{{.Fees}}</td></tr>
<tr><td><strong>Closing balance</strong></td><td align="right"><strong>{{.Closing}}</strong></td></tr>
</table>
{{if gt .Payout 0}}<p>Paid out to you: <strong>{{.Payout}}</strong>. The next day starts at 0.</p>
{{- else if lt .Carry 0}}<p>Nothing was paid out. Carried over to the next day: <strong>{{.Carry}}</strong>.</p>
{{- else}}<p>Nothing was paid out and nothing is carried over.</p>{{end}}
<p>aTES</p>
</body>
</html>
`))

// render returns the plain-text and HTML bodies of s.
func render(s summary) (text, html string, err error) {
	var t, h bytes.Buffer
	if err := textBody.Execute(&t, s); err != nil {
		return "", "", fmt.Errorf("render text body: %w", err)
	}
	if err := htmlBody.Execute(&h, s); err != nil {
		return "", "", fmt.Errorf("render HTML body: %w", err)
	}
	return t.String(), h.String(), nil
}
