package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server"
)

// TestMain runs main itself when a test starts this binary as ates, to see its exit codes.
func TestMain(m *testing.M) {
	if os.Getenv("TEST_ATES_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// atesProcess runs ates as its own process with args: its exit code, stdout and stderr.
func atesProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TEST_ATES_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

// execOut runs ates in this process with args: stdout, stderr and the error.
func execOut(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := execute(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// TestHelp: `ates help` and `ates --help` list every service and operator command on
// stdout and exit 0; `ates` alone prints the same to stderr and exits 2.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, _ := atesProcess(t, args...)
		require.Equal(t, 0, code, "ates %s", args)
		for _, cmd := range append(serviceNames(), "all", "migrate", "admin", "close-day", "dlq", "broker",
			"verify", "healthcheck", "version", "completion") {
			require.Contains(t, out, "\n  "+cmd+" ", "ates %s lists %s", args, cmd)
		}
	}
	code, out, errOut := atesProcess(t)
	require.Equal(t, 2, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "Operator commands:")

	out, _, err := execOut(t, "", "migrate", "--help")
	require.NoError(t, err)
	require.Contains(t, out, "status")
	require.Contains(t, out, "down")
}

// TestVersion: `ates version` (and --version) prints the version, the module's or the one
// set with -ldflags -X github.com/ates/ates/services/internal/server.Version, and the Go version.
func TestVersion(t *testing.T) {
	code, out, _ := atesProcess(t, "version")
	require.Equal(t, 0, code)
	require.Regexp(t, `^ates \S+ \(.*go1\.[0-9]+.*\)\n$`, out)
	code, out2, _ := atesProcess(t, "--version")
	require.Equal(t, 0, code)
	require.Equal(t, out, out2)

	server.Version = "v9.8.7"
	t.Cleanup(func() { server.Version = "" })
	out, _, err := execOut(t, "", "version")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "ates v9.8.7 ("), out)
}

// TestUnknownCommand: an unknown command, subcommand or flag exits 1 and says what was
// not understood; nothing runs.
func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := atesProcess(t, "frobnicate")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, `ates: unknown command "frobnicate" for "ates" (see ates help)`)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "sideways"}, `unknown command "sideways" for "ates migrate"`},
		{[]string{"admin", "delete"}, `unknown command "delete" for "ates admin"`},
		{[]string{"admin"}, "ates admin needs a subcommand: create"},
		{[]string{"dlq"}, "ates dlq needs a subcommand"},
		{[]string{"broker", "teardown"}, `unknown command "teardown" for "ates broker"`},
		{[]string{"close-day", "--day", "2026-01-01"}, "unknown flag: --day"},
		{[]string{"verify", "now"}, `unknown command "now" for "ates verify"`},
		{[]string{"healthcheck"}, "accepts 1 arg(s), received 0"},
	} {
		_, _, err := execOut(t, "", tc.args...)
		require.ErrorContains(t, err, tc.want, "ates %s", tc.args)
	}
}

// TestCompletion: `ates completion bash|zsh|fish` prints a completion script.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, _, err := execOut(t, "", "completion", shell)
		require.NoError(t, err)
		require.Contains(t, out, "ates", shell)
		require.Greater(t, len(out), 1000, shell)
	}
}

// TestConfigErrorNamesTheVariable: a setting that does not parse stops a command with
// the variable's name, not the Go field's. Not parallel: it sets the environment.
func TestConfigErrorNamesTheVariable(t *testing.T) {
	t.Setenv("ATES_AUTH_TOKEN_TTL", "soon")
	code, _, errOut := atesProcess(t, "broker", "definitions")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `ATES_AUTH_TOKEN_TTL="soon" is not a duration`)
	require.NotContains(t, errOut, "TokenTTL")
}

// TestUnknownVariableWarning: an ATES_* variable no setting reads is warned about when a
// command starts, with the setting a typo most likely meant; the command still runs.
// Not parallel: it sets the environment.
func TestUnknownVariableWarning(t *testing.T) {
	t.Setenv("ATES_TYPO", "1")
	t.Setenv("ATES_AUTH_TOKEN_TL", "1h")
	out, errOut, err := execOut(t, "", "broker", "definitions")
	require.NoError(t, err)
	require.Contains(t, out, `"exchanges"`)
	require.Contains(t, errOut, "unknown setting ignored")
	require.Contains(t, errOut, "variable=ATES_TYPO\n")
	require.Contains(t, errOut, "variable=ATES_AUTH_TOKEN_TL did_you_mean=ATES_AUTH_TOKEN_TTL")

	_, errOut, err = execOut(t, "", "version")
	require.NoError(t, err)
	require.Empty(t, errOut, "commands that read no settings say nothing about them")
}

// TestMigrateCommands: `ates migrate status` lists the migrations; `migrate down` asks
// first and rolls one version back; `migrate` alone and `migrate up` apply it again.
// Not parallel: it sets the environment.
func TestMigrateCommands(t *testing.T) {
	pool, url := pgtest.NewDB(t)
	t.Setenv("ATES_DATABASE_URL", url)
	status := func() string {
		t.Helper()
		out, _, err := execOut(t, "", "migrate", "status")
		require.NoError(t, err)
		return out
	}
	out := status()
	require.Contains(t, out, "VERSION  FILE")
	require.Contains(t, out, "00001_init.sql")
	require.Regexp(t, `\n6 +00006_enums_and_names\.sql +20\d\d-`, out)
	require.Contains(t, out, "6 applied, 0 pending\n")

	_, _, err := execOut(t, "no\n", "migrate", "down")
	require.ErrorContains(t, err, "not confirmed; nothing rolled back")
	require.Contains(t, status(), "6 applied, 0 pending\n")

	out, _, err = execOut(t, "yes\n", "migrate", "down")
	require.NoError(t, err)
	require.Contains(t, out, "Roll back migration 6 (00006_enums_and_names.sql)?")
	require.Contains(t, out, "rolled back 6 (00006_enums_and_names.sql)\n")
	out = status()
	require.Regexp(t, `\n6 +00006_enums_and_names\.sql +pending\n`, out)
	require.Contains(t, out, "5 applied, 1 pending\n")

	out, _, err = execOut(t, "", "migrate", "down", "--yes")
	require.NoError(t, err)
	require.Equal(t, "rolled back 5 (00005_audit_log_entries_index.sql)\n", out)
	out, _, err = execOut(t, "", "migrate", "down", "--yes")
	require.NoError(t, err)
	require.Equal(t, "rolled back 4 (00004_read_models.sql)\n", out)
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT to_regclass('worker_day_totals') IS NOT NULL").Scan(&exists))
	require.False(t, exists, "down ran 00004's Down section")

	_, _, err = execOut(t, "", "migrate")
	require.NoError(t, err)
	require.Contains(t, status(), "6 applied, 0 pending\n")
	_, _, err = execOut(t, "", "migrate", "down", "--yes")
	require.NoError(t, err)
	_, _, err = execOut(t, "", "migrate", "up")
	require.NoError(t, err)
	require.Contains(t, status(), "6 applied, 0 pending\n")
}

// serviceNames are the names of the services ates runs.
func serviceNames() []string {
	names := make([]string, 0, len(services))
	for _, s := range services {
		names = append(names, s.Name)
	}
	return names
}
