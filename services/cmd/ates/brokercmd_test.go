package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/config"
)

// TestBrokerSetupNeverDowngradesTheOperator: a service URL that names the user of
// ATES_AMQP_URL (guest, locally) is refused, since setting it up would leave the operator
// with one service's rights; a service without a URL of its own gets no user.
func TestBrokerSetupNeverDowngradesTheOperator(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadFrom(map[string]string{
		"ATES_TASKS_AMQP_URL":      "amqp://ates-tasks:tasks-pw@127.0.0.1:5672/",
		"ATES_MAILSENDER_AMQP_URL": "amqp://ates-mailsender:mail-pw@127.0.0.1:5672/",
	})
	require.NoError(t, err)
	defs, users, err := brokerDefinitions(cfg, false)
	require.NoError(t, err)
	require.Equal(t, []string{"ates-mailsender (mailsender)", "ates-tasks (tasks)"}, users)
	var doc struct {
		Users []struct{ Name string } `json:"users"`
	}
	require.NoError(t, json.Unmarshal(defs, &doc))
	require.Len(t, doc.Users, 2, "no user for taskhandler or dailyaccounting, nor the operator")

	defs, _, err = brokerDefinitions(cfg, true)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(defs, &doc))
	require.Len(t, doc.Users, 3, "--admin adds the operator")

	cfg.Broker.TaskhandlerURL = "amqp://guest:other@127.0.0.1:5672/"
	_, _, err = brokerDefinitions(cfg, false)
	require.ErrorContains(t, err, "the user of ATES_AMQP_URL")
}

// TestBrokerDefinitionsFileIsPrivate: `ates broker definitions --out FILE` holds every
// service user's password hash (salted SHA-256: quick to guess against), so the file is
// readable by its owner only, also when it existed before with wider permissions
// (os.WriteFile keeps those of a file it truncates).
func TestBrokerDefinitionsFileIsPrivate(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadFrom(map[string]string{"ATES_TASKS_AMQP_URL": "amqp://ates-tasks:tasks-pw@127.0.0.1:5672/"})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "definitions.json")
	require.NoError(t, os.WriteFile(out, []byte("old"), 0o644))
	require.NoError(t, os.Chmod(out, 0o644)) // whatever the umask
	require.NoError(t, brokerCmd(t.Context(), cfg, "definitions", brokerOptions{out: out}, io.Discard))
	fi, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	body, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(body), "ates-tasks")
}
