//go:build faulttest

package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one ates subprocess (a service replica or an operator command) that the suite
// can SIGKILL and start again. Its stdout and stderr go to one log file, appended to on
// every start.
type proc struct {
	name     string
	bin      string
	args     []string
	env      []string
	logPath  string
	httpAddr string // /healthz and /readyz, for services
	grpcAddr string // for the APIs
	command  bool   // an operator command, expected to exit by itself

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopping bool     // a kill or stop the suite asked for
	exits    []string // exits the suite did not ask for
}

// start runs the process; it fails the test if it cannot be started.
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isDone(p.done) {
		t.Fatalf("%s started twice", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("open log of %s: %v", p.name, err)
	}
	fmt.Fprintf(f, "=== faulttest: start %s %s at %s\n", p.name, strings.Join(p.args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// If the test binary dies without cleaning up (a timeout panic), take the child along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done, p.stopping, p.waitErr = cmd, make(chan struct{}), false, nil
	done := p.done
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.waitErr = err
		if !p.stopping && !p.command {
			p.exits = append(p.exits, fmt.Sprintf("%s exited by itself at %s: %v", p.name, time.Now().Format("15:04:05.000"), err))
		}
		p.mu.Unlock()
		close(done)
	}()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 0) }

// stop sends SIGTERM and waits up to 20 s for a graceful exit, then kills.
func (p *proc) stop() { p.signal(syscall.SIGTERM, 20*time.Second) }

func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil || isDone(done) {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// wait waits for the process to exit by itself (an operator command) and returns its
// exit error.
func (p *proc) wait(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("%s did not exit: %w", p.name, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return isDone(p.done)
}

// unexpectedExits lists the times the process ended without the suite asking.
func (p *proc) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exits...)
}

// waitReady waits until path (/healthz or /readyz) on the process's HTTP port answers 200.
func (p *proc) waitReady(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		if isDone(done) {
			return fmt.Errorf("%s exited while the suite waited for %s; see %s", p.name, path, p.logPath)
		}
		resp, err := client.Get("http://" + p.httpAddr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 on %s within %s (last: %s); see %s", p.name, path, timeout, last, p.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lostPortRace reports whether the process ended because another program took one of
// the ports systemtest.FreeAddr found free before the process could bind it.
func (p *proc) lostPortRace() bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && strings.Contains(string(b), "address already in use")
}

func isDone(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
