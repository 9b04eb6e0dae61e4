package mailsender_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// tap is a TCP relay in front of the shared Mailpit that counts the connections made
// through it and can cut them all, as a server hanging up on idle sessions does.
type tap struct {
	addr  string
	mu    sync.Mutex
	dials int
	open  []net.Conn
}

func newTap(t *testing.T, upstream string) *tap {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	tp := &tap{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			tp.mu.Lock()
			tp.dials++
			tp.open = append(tp.open, c, up)
			tp.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return tp
}

func (tp *tap) connections() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.dials
}

// cut closes every connection made so far.
func (tp *tap) cut() {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, c := range tp.open {
		_ = c.Close()
	}
	tp.open = nil
}

func TestMailsGoOverOnePersistentSession(t *testing.T) {
	t.Parallel()
	mailpit := mailpittest.Shared()
	tp := newTap(t, mailpit.SMTP)
	e := newEnv(t, options{smtp: config.SMTP{Addr: tp.addr}})

	send := func(t *testing.T) {
		t.Helper()
		ev := summary(0, 30, -10)
		id := e.publish(t, ev)
		msgs := mailpit.Wait(t, ev.GetEmail(), 1)
		require.Len(t, msgs, 1)
		require.Eventually(t, func() bool { return e.sentMails(t, id) == 1 }, 5*time.Second, 10*time.Millisecond)
	}
	for range 5 {
		send(t)
	}
	require.Equal(t, 1, tp.connections(), "five mails one after another share one SMTP session")

	t.Run("a session the server hung up on is replaced and the mail still goes out once", func(t *testing.T) {
		tp.cut()
		send(t)
		require.Equal(t, 2, tp.connections())
		require.Zero(t, e.mails(t, "failed"), "a dead idle session is not a failed send")
	})
}
