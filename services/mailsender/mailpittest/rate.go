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
		if _, err := fmt.Fprintf(dw, "From: aTES <noreply@ates.local>\r\nTo: <%s>\r\nSubject: Your aTES summary for 2026-02-10\r\nMessage-ID: <bare-%d-%d@ates>\r\n%s", to, session, i, body); err != nil {
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

// bareBody is shaped like a summary mail: multipart/alternative with a plain-text and
// an HTML part, so that Mailpit does the same work for it (parsing both parts and
// indexing the HTML's text) as for the mails mailsender sends.
func bareBody() string {
	return "MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Hello Worker,\r\n\r\nhere is your aTES account for 2026-02-10.\r\n\r\n" +
		"  Opening balance      -5\r\n  Rewards              40\r\n  Fees                -12\r\n  Closing balance      23\r\n\r\n" +
		"Paid out to you: 23. The next day starts at 0.\r\n\r\naTES\r\n" +
		"--b1\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"<!DOCTYPE html>\r\n<html>\r\n<body style=3D\"font-family: sans-serif\">\r\n<p>Hello Worker,</p>\r\n" +
		"<p>here is your aTES account for <strong>2026-02-10</strong>.</p>\r\n<table cellpadding=3D\"4\">\r\n" +
		"<tr><td>Opening balance</td><td align=3D\"right\">-5</td></tr>\r\n" +
		"<tr><td>Rewards</td><td align=3D\"right\">40</td></tr>\r\n" +
		"<tr><td>Fees</td><td align=3D\"right\">-12</td></tr>\r\n" +
		"<tr><td><strong>Closing balance</strong></td><td align=3D\"right\"><strong>23</strong></td></tr>\r\n" +
		"</table>\r\n<p>Paid out to you: <strong>23</strong>. The next day starts at 0.</p>\r\n<p>aTES</p>\r\n</body>\r\n</html>\r\n" +
		"--b1--\r\n"
}
