//go:build faulttest

package faulttest

import (
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// row is one scenario's line of the results table.
type row struct {
	scenario string
	skipped  string // why the scenario did not run

	requests       int64 // logical writes the load made
	acked          int64 // of which the API acknowledged (OK)
	applied        int64 // of which the effect is in the database
	appliedUnacked int64 // applied although the answer was an error
	lost           int64 // acknowledged but not applied
	duplicated     int64 // applied more than once: tasks per request, rewards, fees, events, mails
	mailResent     int64 // copies of one mail (one Message-ID) sent again after a kill in the SMTP window
	deadLettered   int64 // messages in the dead-letter queues
	recovery       time.Duration
	recovered      bool
	why            string // what was still missing when the suite stopped waiting
	checked        bool   // the invariants ran; false if the scenario stopped before
}

// table collects the rows of every scenario.
type table struct {
	mu   sync.Mutex
	rows []*row
}

func (tb *table) add(r *row) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

// String renders the table, with a legend.
func (tb *table) String() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	b.WriteString("\naTES fault suite\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\trequests\tacknowledged\tapplied\tlost\tduplicated\tdead-lettered\trecovery s\tapplied w/o ack\tmail re-sent\t")
	for _, r := range tb.rows {
		if r.skipped != "" {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\tskipped\t-\t-\t\n", r.scenario)
			continue
		}
		if !r.checked {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\taborted\t-\t-\t\n", r.scenario)
			continue
		}
		recovery := "never"
		if r.recovered {
			recovery = fmt.Sprintf("%.1f", r.recovery.Seconds())
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t\n",
			r.scenario, r.requests, r.acked, r.applied, r.lost, r.duplicated, r.deadLettered, recovery, r.appliedUnacked, r.mailResent)
	}
	_ = w.Flush()
	b.WriteString(`
requests: logical writes (creates, completes); acknowledged: answered OK; applied: effect in
the database; lost: acknowledged but not applied; duplicated: applied more than once (tasks
per request, reward/fee rows per task, audit rows per event, different mails to a worker for
one day);
dead-lettered: messages in *.dead; recovery: seconds from the fault's end until queues were
empty, every acknowledged write applied and every mail sent ("never" within the budget);
applied w/o ack: writes applied although the API answered with an error; mail re-sent:
copies of one mail (same Message-ID) sent again because mailsender was killed between the
SMTP server accepting it and recording it, a window SMTP cannot close (clients show them once).
`)
	for _, r := range tb.rows {
		switch {
		case r.skipped != "":
			fmt.Fprintf(&b, "%s skipped: %s\n", r.scenario, r.skipped)
		case !r.checked:
			fmt.Fprintf(&b, "%s aborted before its checks; see its log above\n", r.scenario)
		}
	}
	return b.String()
}
