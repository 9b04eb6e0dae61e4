package accounting

import "time"

// daySums is one day's reward and fee totals of a user.
type daySums struct {
	day     time.Time
	rewards int64
	fees    int64
}

// openBalance is the balance of an open day, as the daily close will write it: carry is
// what the last closed day carried over (zero or negative), and sums are the user's
// totals of each open day with activity up to and including day, oldest first. Every
// open day before day is closed in thought: a positive closing would be paid out, so
// only a negative one carries on (opening of the next day = min(closing, 0)). Payout and
// carry stay zero while day is open.
func openBalance(carry int64, day time.Time, sums []daySums) dayBalance {
	b := dayBalance{Day: day}
	opening := carry
	for _, s := range sums {
		if !s.day.Before(day) {
			b.Rewards, b.Fees = s.rewards, s.fees
			break
		}
		opening = min(opening+s.rewards+s.fees, 0)
	}
	b.Opening = opening
	b.Closing = opening + b.Rewards + b.Fees
	return b
}
