package systemtest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Service is a service `ates all` runs, with the ports it listens on by default (the
// README's table); GRPCPort is 0 for a service without a gRPC server.
type Service struct {
	Name               string
	HTTPPort, GRPCPort int
}

// Services are the services of `ates all`, in the order StartAll waits for them.
var Services = []Service{
	{"auth", 8081, 50051}, {"tasks", 8082, 50052}, {"accounting", 8083, 50053}, {"analytics", 8084, 50054},
	{"taskhandler", 8085, 0}, {"dailyaccounting", 8086, 0}, {"mailsender", 8087, 0},
}

// readyTimeout bounds the wait for every service of `ates all` to be ready.
const readyTimeout = 60 * time.Second

// StartAll runs `bin all` with env until the test ends (SIGTERM, then a kill after 15
// s), and waits until GET /readyz answers 200 at httpAddrs[s.Name] for every service s
// of Services. Its output goes to a file that the test log shows if the test fails.
func StartAll(t testing.TB, bin string, env []string, httpAddrs map[string]string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "ates-all.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "all")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ates all: %v", err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("ates all:\n%s", log)
			}
		}
	})
	deadline := time.Now().Add(readyTimeout)
	for _, s := range Services {
		addr, ok := httpAddrs[s.Name]
		if !ok {
			t.Fatalf("StartAll: no HTTP address for %s", s.Name)
		}
		for {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-exited:
				t.Fatalf("ates all exited before %s was ready: %v; see the log below", s.Name, waitErr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready within %s: %v", s.Name, readyTimeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
