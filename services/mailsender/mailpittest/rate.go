package mailpittest

import (
	"fmt"
	"net"
	"net/textproto"
	"sync"
	"testing"
	"time"
)

// Total is how many messages the server holds. Only a private server's total says
// anything about one test.
func (s Server) Total(t testing.TB) int {
	t.Helper()
	var got struct{ Total int }
	s.get(t, "/api/v1/messages?limit=1", &got)
	return got.Total
}

// WaitTotal waits until the server holds at least n messages, at most timeout, and
// returns when the n-th was counted.
func (s Server) WaitTotal(t testing.TB, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Total(t)
		if got >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived in Mailpit within %s", got, n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BareSend is the yardstick of a mail sender: it sends n small mails (about the size of
// a summary mail) to the server over conns persistent SMTP sessions at once, with no
// database or broker behind it, waits until the server holds them all, and returns the
// time from the first mail to the last one stored.
func (s Server) BareSend(t testing.TB, n, conns int) time.Duration {
	t.Helper()
	before := s.Total(t)
	body := bareBody()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Go(func() {
			if err := s.bareSession(c, n/conns+boolInt(c < n%conns), body); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("bare SMTP send: %v", err)
	}
	end := s.WaitTotal(t, before+n, time.Minute+time.Duration(n)*time.Millisecond)
	return end.Sub(start)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bareSession sends n mails over one SMTP session: MAIL, RCPT, DATA each.
func (s Server) bareSession(session, n int, body string) error {
	conn, err := net.Dial("tcp", s.SMTP)
	if err != nil {
		return err
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	cmd := func(code int, format string, args ...any) error {
		id, err := tp.Cmd(format, args...)
		if err != nil {
			return err
		}
		tp.StartResponse(id)
		defer tp.EndResponse(id)
		_, _, err = tp.ReadResponse(code)
		return err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return err
	}
	if err := cmd(250, "EHLO bare.local"); err != nil {
		return err
	}
	for i := range n {
		to := fmt.Sprintf("bare-%d-%d@bare.example.com", session, i)
		if err := cmd(250, "MAIL FROM:<noreply@ates.local>"); err != nil {
			return err
		}
		if err := cmd(250, "RCPT TO:<%s>", to); err != nil {
			return err
		}
		if err := cmd(354, "DATA"); err != nil {
			return err
		}
		dw := tp.DotWriter()
		if _, err := fmt.Fprintf(dw, "From: aTES <noreply@ates.local>\r\nTo: <%s>\r\nSubject: Your aTES summary for 2026-02-10\r\nMessage-ID: <bare-%d-%d@ates>\r\n\r\n%s", to, session, i, body); err != nil {
			return err
		}
		if err := dw.Close(); err != nil {
			return err
		}
		if _, _, err := tp.ReadResponse(250); err != nil {
			return err
		}
	}
	return cmd(221, "QUIT")
}

// bareBody is a text body as long as a summary mail's two bodies together.
func bareBody() string {
	line := "  Opening balance       0  Rewards  123  Fees  -45  Closing balance  78\r\n"
	var b []byte
	for len(b) < 1500 {
		b = append(b, line...)
	}
	return string(b)
}
