// Package ledger holds the money rule that accounting and analytics both apply to a day
// that is still open: what its balance will be when the daily close comes.
package ledger

import "time"

// DaySums is one worker's reward and fee totals of one day.
type DaySums struct {
	Day     time.Time
	Rewards int64
	Fees    int64
}

// Balance is a day's account before the close: payout and carry stay zero while open.
type Balance struct {
	Opening, Rewards, Fees, Closing int64
}

// Open is the balance of open day as the daily close will write it: carry is what the
// last closed day carried over (zero or negative), and sums are the worker's totals of
// each open day with activity up to and including day, oldest first. Every open day
// before day is closed in thought: a positive closing would be paid out, so only a
// negative one carries on (opening of the next day = min(closing, 0)).
func Open(carry int64, day time.Time, sums []DaySums) Balance {
	var b Balance
	opening := carry
	for _, s := range sums {
		if !s.Day.Before(day) {
			b.Rewards, b.Fees = s.Rewards, s.Fees
			break
		}
		opening = min(opening+s.Rewards+s.Fees, 0)
	}
	b.Opening = opening
	b.Closing = opening + b.Rewards + b.Fees
	return b
}

// FirstOpen is the business day money is written to, and what "today" means to a
// reader: today, unless today is closed already (an operator closed it early), then the
// day after the last closed day. lastClosed is the zero time when no day was ever closed
// (as the ClosedDayLast query returns it). A closed day stays closed: activity after its
// close belongs to the next open day.
func FirstOpen(today, lastClosed time.Time) time.Time {
	if next := lastClosed.AddDate(0, 0, 1); next.After(today) {
		return next
	}
	return today
}
