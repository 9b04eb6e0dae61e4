//go:build loadtest

package loadtest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// proc is one ates subprocess: a service or an operator command. Its stdout and stderr
// go to one log file.
type proc struct {
	name     string
	logPath  string
	httpAddr string // /readyz, for services
	grpcAddr string // for the APIs
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
}

// startProc runs bin with args and env; the process is SIGKILLed at cleanup.
func startProc(t *testing.T, bin, logDir, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("open log of %s: %v", name, err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// If the test binary dies without cleaning up (a timeout panic), take the child along.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// wait waits for an operator command to exit and returns its exit error.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s", p.name, timeout)
	}
}

// waitReady waits until /readyz answers 200, failing the test if the process exits
// first or timeout passes.
func (p *proc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	var last string
	ok := waitFor(timeout, func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited while waiting to be ready: %v; see %s", p.name, p.err, p.logPath)
		default:
		}
		resp, err := client.Get("http://" + p.httpAddr + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	})
	if !ok {
		t.Fatalf("%s not ready within %s (last: %s); see %s", p.name, timeout, last, p.logPath)
	}
}

// waitFor polls cond every 50 ms until it holds (true) or timeout passes (false).
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
