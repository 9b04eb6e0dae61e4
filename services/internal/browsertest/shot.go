package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ates/ates/services/internal/systemtest"
)

// Shot writes a full-page PNG of the tab as the test's next step, NN-step.png in its
// screenshot folder (numbered across the test's browsers), logs its path and returns it.
func (b *Browser) Shot(step string) string {
	b.t.Helper()
	path, err := b.shotErr(step)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", step, err)
	}
	return path
}

// shot is Shot for cleanups: a failure is logged, not fatal.
func (b *Browser) shot(step string) {
	if _, err := b.shotErr(step); err != nil {
		b.t.Logf("screenshot %s: %v", step, err)
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// shots is a test's screenshot folder and how many screenshots its browsers took: a
// test with two browsers (two users) numbers its steps in one sequence.
type shots struct {
	dir string
	mu  sync.Mutex
	n   int
}

var (
	shotsMu     sync.Mutex
	shotsByTest = map[testing.TB]*shots{}
)

// shotsOf is t's screenshot folder, emptied of a previous run's files when t's first
// browser starts.
func shotsOf(t testing.TB) *shots {
	t.Helper()
	shotsMu.Lock()
	defer shotsMu.Unlock()
	if s, ok := shotsByTest[t]; ok {
		return s
	}
	s := &shots{dir: ShotDir(t)}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatalf("clear the screenshots of a previous run: %v", err)
	}
	shotsByTest[t] = s
	t.Cleanup(func() {
		shotsMu.Lock()
		defer shotsMu.Unlock()
		delete(shotsByTest, t)
	})
	return s
}

// next is the path of the next screenshot, named after step.
func (s *shots) next(step string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", err
	}
	s.n++
	return filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, unsafeName.ReplaceAllString(step, "-"))), nil
}

func (b *Browser) shotErr(step string) (string, error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		return "", err
	}
	path, err := b.shots.next(step)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", err
	}
	b.t.Logf("screenshot: %s", path)
	return path, nil
}

// ShotDir is where t's screenshots go: .cache/screenshots/<TestName>/ at the
// repository's root (gitignored with the rest of .cache), subtests' slashes made
// dashes.
func ShotDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(systemtest.RepoRoot(t), ".cache", "screenshots", unsafeName.ReplaceAllString(t.Name(), "-"))
}
