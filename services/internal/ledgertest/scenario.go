package ledgertest

import "github.com/google/uuid"

// Stats are a day's company figures.
type Stats struct {
	Earnings, Rewards, Fees int64
}

// Scenario is three days of three workers, with every figure computed by hand: Ann has a
// profitable day (paid out), a losing day (negative carry) and a day that pays the carry
// back; Bob pays his carry back in two steps; Cid does nothing until he loses on day 3.
type Scenario struct {
	Days          [3]string
	Ann, Bob, Cid User
	// Want is each worker's closed balance, by day. While a day is open the API shows the
	// same opening, rewards, fees and closing, with payout and carry zero.
	Want map[string]map[uuid.UUID]Balance
	// Stats are the company's figures by day: earnings = -(rewards + fees).
	Stats map[string]Stats
}

// ThreeDays writes the scenario on days (oldest first, all in the past), for three new
// workers.
func ThreeDays(b *Book, days [3]string) Scenario {
	b.t.Helper()
	return ThreeDaysOf(b, days, b.Worker(), b.Worker(), b.Worker())
}

// ThreeDaysOf writes the scenario on days (oldest first, all in the past) for workers
// that exist already, such as workers registered through the API who can log in.
func ThreeDaysOf(b *Book, days [3]string, annUser, bobUser, cidUser User) Scenario {
	b.t.Helper()
	s := Scenario{Days: days, Ann: annUser, Bob: bobUser, Cid: cidUser}
	d1, d2, d3 := days[0], days[1], days[2]
	ann, bob, cid := s.Ann.ID, s.Bob.ID, s.Cid.ID

	// Day 1.
	t1 := b.Fee(ann, d1, -10)
	b.Fee(ann, d1, -15)
	b.Reward(ann, t1, d1, 40)
	t5 := b.Fee(bob, d1, -20)
	// Day 2.
	t3 := b.Fee(ann, d2, -20)
	t6 := b.Fee(bob, d2, -10)
	b.Reward(bob, t5, d2, 25)
	// Day 3.
	t4 := b.Fee(ann, d3, -12)
	b.Reward(ann, t3, d3, 35)
	b.Reward(ann, t4, d3, 22)
	b.Reward(bob, t6, d3, 40)
	b.Fee(cid, d3, -11)

	s.Want = map[string]map[uuid.UUID]Balance{
		d1: {
			ann: {Opening: 0, Rewards: 40, Fees: -25, Closing: 15, Payout: 15, Carry: 0},
			bob: {Opening: 0, Rewards: 0, Fees: -20, Closing: -20, Payout: 0, Carry: -20},
			cid: {},
		},
		d2: {
			ann: {Opening: 0, Rewards: 0, Fees: -20, Closing: -20, Payout: 0, Carry: -20},
			bob: {Opening: -20, Rewards: 25, Fees: -10, Closing: -5, Payout: 0, Carry: -5},
			cid: {},
		},
		d3: {
			ann: {Opening: -20, Rewards: 57, Fees: -12, Closing: 25, Payout: 25, Carry: 0},
			bob: {Opening: -5, Rewards: 40, Fees: 0, Closing: 35, Payout: 35, Carry: 0},
			cid: {Opening: 0, Rewards: 0, Fees: -11, Closing: -11, Payout: 0, Carry: -11},
		},
	}
	s.Stats = map[string]Stats{
		d1: {Rewards: 40, Fees: -45, Earnings: 5},   // fees -10 -15 -20
		d2: {Rewards: 25, Fees: -30, Earnings: 5},   // fees -20 -10
		d3: {Rewards: 97, Fees: -23, Earnings: -74}, // rewards 35 + 22 + 40, fees -12 -11
	}
	return s
}
