package ates_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// atesService is one aTES service in compose.yaml with the ports docs/product.md gives it.
type atesService struct {
	name     string
	grpcPort uint32 // 0: the service has no gRPC server
	httpPort uint32
	api      bool // authenticates every call through auth
}

// atesServices is the table of default ports in docs/product.md.
var atesServices = []atesService{
	{name: "auth", grpcPort: 50051, httpPort: 8081},
	{name: "tasks", grpcPort: 50052, httpPort: 8082, api: true},
	{name: "accounting", grpcPort: 50053, httpPort: 8083, api: true},
	{name: "analytics", grpcPort: 50054, httpPort: 8084, api: true},
	{name: "taskhandler", httpPort: 8085},
	{name: "dailyaccounting", httpPort: 8086},
	{name: "mailsender", httpPort: 8087},
}

// testKeys are the secret keys the compose tests give, as an operator must.
var testKeys = []string{
	"ATES_AUTH_HMAC_KEY=compose-test-key-0123456789",
	"ATES_TASKS_EVENT_KEYS=k1:compose-test-tasks-event-key",
	"ATES_DAILYACCOUNTING_EVENT_KEYS=k1:compose-test-dailyaccounting-event-key",
}

// withTestKeys adds each of testKeys that env does not set itself.
func withTestKeys(env []string) []string {
	for _, key := range testKeys {
		name, _, _ := strings.Cut(key, "=")
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }) {
			env = append(env, key)
		}
	}
	return env
}

// loadCompose loads and validates compose.yaml offline, interpolating from env
// only (never the caller's environment), the way `docker compose config` would; the
// secret keys are given unless env holds them. No profile is active.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	return loadComposeWith(t, withTestKeys(env))
}

// loadComposeWith loads compose.yaml from env alone, with more options such as profiles.
func loadComposeWith(t *testing.T, env []string, opts ...cli.ProjectOptionsFn) *types.Project {
	t.Helper()
	project, err := tryLoadCompose(env, opts...)
	require.NoError(t, err, "compose.yaml does not load")
	return project
}

func tryLoadCompose(env []string, more ...cli.ProjectOptionsFn) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, append([]cli.ProjectOptionsFn{
		cli.WithName("ates-test"),
		cli.WithWorkingDirectory("."),
		cli.WithEnv(env),
	}, more...)...)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func TestComposeHasEveryService(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)

	want := []string{"postgres", "rabbitmq", "mailpit", "migrate", "broker-setup"}
	for _, s := range atesServices {
		want = append(want, s.name)
	}
	require.ElementsMatch(t, want, project.ServiceNames())
}

func TestComposeAtesServices(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	migrate, err := project.GetService("migrate")
	require.NoError(t, err)

	for _, s := range atesServices {
		t.Run(s.name+" runs the shared image with its own subcommand", func(t *testing.T) {
			t.Parallel()
			svc, err := project.GetService(s.name)
			require.NoError(t, err)
			require.Equal(t, migrate.Image, svc.Image)
			require.NotNil(t, svc.Build)
			require.Equal(t, migrate.Build.Context, svc.Build.Context)
			require.Equal(t, types.ShellCommand{s.name}, svc.Command)
		})

		t.Run(s.name+" reports ready through its HTTP port", func(t *testing.T) {
			t.Parallel()
			svc, err := project.GetService(s.name)
			require.NoError(t, err)
			require.NotNil(t, svc.HealthCheck)
			require.False(t, svc.HealthCheck.Disable)
			url := fmt.Sprintf("http://127.0.0.1:%d/readyz", s.httpPort)
			require.Equal(t, types.HealthCheckTest{"CMD", "/ates", "healthcheck", url}, svc.HealthCheck.Test)
		})

		t.Run(s.name+" starts after the migration and the infrastructure", func(t *testing.T) {
			t.Parallel()
			svc, err := project.GetService(s.name)
			require.NoError(t, err)
			wantCondition := map[string]string{
				"migrate":      types.ServiceConditionCompletedSuccessfully,
				"broker-setup": types.ServiceConditionCompletedSuccessfully,
				"postgres":     types.ServiceConditionHealthy,
				"rabbitmq":     types.ServiceConditionHealthy,
			}
			if s.api {
				wantCondition["auth"] = types.ServiceConditionHealthy
			}
			for dep, cond := range wantCondition {
				require.Contains(t, svc.DependsOn, dep)
				require.Equal(t, cond, svc.DependsOn[dep].Condition, "depends_on %s", dep)
			}
		})

		t.Run(s.name+" reaches the other containers by service name", func(t *testing.T) {
			t.Parallel()
			svc, err := project.GetService(s.name)
			require.NoError(t, err)
			env := svc.Environment
			require.Contains(t, *env["ATES_DATABASE_URL"], "@postgres:5432/")
			require.Contains(t, *env["ATES_AMQP_URL"], "@rabbitmq:5672/")
			require.Equal(t, "mailpit:1025", *env["ATES_SMTP_ADDR"])
			require.Equal(t, "auth:50051", *env["ATES_AUTH_ADDR"])
			// The web dashboard (in analytics) calls each REST API by service name.
			for _, api := range atesServices {
				if api.name == "auth" || api.api {
					want := fmt.Sprintf("http://%s:%d", api.name, api.httpPort)
					require.Equal(t, want, *env["ATES_WEB_"+strings.ToUpper(api.name)+"_URL"])
				}
			}
		})
	}
}

func TestComposePublishesSpecPorts(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)

	tests := []struct {
		name    string
		service string
		ports   []uint32
	}{
		{name: "RabbitMQ publishes AMQP and the management UI", service: "rabbitmq", ports: []uint32{5672, 15672}},
		{name: "Mailpit publishes SMTP and its web UI", service: "mailpit", ports: []uint32{1025, 8025}},
	}
	for _, s := range atesServices {
		ports := []uint32{s.httpPort}
		if s.grpcPort != 0 {
			ports = append(ports, s.grpcPort)
		}
		tests = append(tests, struct {
			name    string
			service string
			ports   []uint32
		}{name: s.name + " publishes the ports in docs/product.md", service: s.name, ports: ports})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc, err := project.GetService(tt.service)
			require.NoError(t, err)
			var got []uint32
			for _, p := range svc.Ports {
				require.Equal(t, fmt.Sprint(p.Target), p.Published, "%s publishes container port %d elsewhere", tt.service, p.Target)
				got = append(got, p.Target)
			}
			require.ElementsMatch(t, tt.ports, got)
		})
	}
}

// TestComposeBindsLocally: by default every port of every service, in every profile, is
// published on 127.0.0.1 only; ATES_BIND opens the aTES services' ports alone.
func TestComposeBindsLocally(t *testing.T) {
	t.Parallel()
	all := cli.WithProfiles([]string{"*"})

	t.Run("every published port listens on 127.0.0.1 by default", func(t *testing.T) {
		t.Parallel()
		project := loadComposeWith(t, withTestKeys(nil), all)
		for _, svc := range project.Services {
			for _, p := range svc.Ports {
				require.Equal(t, "127.0.0.1", p.HostIP, "%s publishes port %d", svc.Name, p.Target)
			}
		}
	})

	t.Run("ATES_BIND publishes the aTES ports elsewhere and keeps the rest local", func(t *testing.T) {
		t.Parallel()
		project := loadComposeWith(t, withTestKeys([]string{"ATES_BIND=0.0.0.0"}), all)
		ates := map[string]bool{}
		for _, s := range atesServices {
			ates[s.name] = true
		}
		for _, svc := range project.Services {
			want := "127.0.0.1"
			if ates[svc.Name] {
				want = "0.0.0.0"
			}
			for _, p := range svc.Ports {
				require.Equal(t, want, p.HostIP, "%s publishes port %d", svc.Name, p.Target)
			}
		}
	})
}

func TestComposeInfrastructure(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{name: "PostgreSQL keeps its data in a named volume and reports health", check: func(t *testing.T) {
			svc, err := project.GetService("postgres")
			require.NoError(t, err)
			require.NotNil(t, svc.HealthCheck)
			require.Equal(t, "pg_isready", svc.HealthCheck.Test[1])
			require.Len(t, svc.Volumes, 1)
			require.Equal(t, types.VolumeTypeVolume, svc.Volumes[0].Type)
			require.Contains(t, project.Volumes, svc.Volumes[0].Source)
		}},
		{name: "RabbitMQ reports health with rabbitmq-diagnostics", check: func(t *testing.T) {
			svc, err := project.GetService("rabbitmq")
			require.NoError(t, err)
			require.NotNil(t, svc.HealthCheck)
			require.Equal(t, types.HealthCheckTest{"CMD", "rabbitmq-diagnostics", "-q", "ping"}, svc.HealthCheck.Test)
		}},
		{name: "the migration runs once after PostgreSQL is healthy", check: func(t *testing.T) {
			svc, err := project.GetService("migrate")
			require.NoError(t, err)
			require.Equal(t, types.ShellCommand{"migrate"}, svc.Command)
			require.Equal(t, types.RestartPolicyNo, svc.Restart)
			require.Equal(t, types.ServiceConditionHealthy, svc.DependsOn["postgres"].Condition)
			require.NotContains(t, svc.DependsOn, "migrate")
		}},
		{name: "mailsender waits for the SMTP server", check: func(t *testing.T) {
			svc, err := project.GetService("mailsender")
			require.NoError(t, err)
			require.Equal(t, types.ServiceConditionHealthy, svc.DependsOn["mailpit"].Condition)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t)
		})
	}
}

func TestComposeKeys(t *testing.T) {
	t.Parallel()

	for _, key := range testKeys {
		name, _, _ := strings.Cut(key, "=")
		t.Run("an unset "+name+" stops compose and says how to make one", func(t *testing.T) {
			t.Parallel()
			others := slices.DeleteFunc(slices.Clone(testKeys), func(kv string) bool { return kv == key })
			_, err := tryLoadCompose(others)
			require.ErrorContains(t, err, name)
			require.ErrorContains(t, err, "openssl rand -base64 32")
		})
	}

	t.Run("the operator's key reaches every container that stores or checks photo hashes", func(t *testing.T) {
		t.Parallel()
		project := loadCompose(t, "ATES_AUTH_HMAC_KEY=s3cret-s3cret-s3cret")
		for _, name := range []string{"migrate", "auth"} {
			svc, err := project.GetService(name)
			require.NoError(t, err)
			require.Equal(t, "s3cret-s3cret-s3cret", *svc.Environment["ATES_AUTH_HMAC_KEY"], name)
			require.Equal(t, "false", *svc.Environment["ATES_ALLOW_DEV_KEYS"], "compose allows the development keys only the dev way")
		}
	})

	t.Run("the dev way runs without secrets, on the public development keys", func(t *testing.T) {
		t.Parallel()
		_, err := tryLoadCompose(nil)
		require.ErrorContains(t, err, "ATES_", "without keys and without deploy/dev.env compose stops")

		project := loadComposeWith(t, nil, cli.WithEnvFiles("deploy/dev.env"), cli.WithDotEnv)
		config := readConfigSource(t)
		for _, s := range atesServices {
			svc, err := project.GetService(s.name)
			require.NoError(t, err)
			require.Equal(t, "true", *svc.Environment["ATES_ALLOW_DEV_KEYS"], "%s accepts the development keys", s.name)
			for _, key := range testKeys {
				name, _, _ := strings.Cut(key, "=")
				value := *svc.Environment[name]
				require.Contains(t, config, strconv.Quote(value), "%s's %s is the public development default", s.name, name)
			}
		}
	})
}

// readConfigSource is the text of services/internal/config (its Go files but tests),
// where every setting and its development default are declared.
func readConfigSource(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("services/internal/config/*.go")
	require.NoError(t, err)
	var text strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		text.Write(b)
	}
	require.NotZero(t, text.Len())
	return text.String()
}

// TestComposeVariablesAreKnownToConfig: every ATES_* variable compose.yaml reads is a
// setting or one of config's compose-only variables, so exporting it for compose never
// draws an unknown-setting warning from the services.
func TestComposeVariablesAreKnownToConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	config := readConfigSource(t)
	vars := regexp.MustCompile(`\$\{(ATES_[A-Z0-9_]+)`).FindAllSubmatch(raw, -1)
	require.NotEmpty(t, vars)
	for _, v := range vars {
		require.Contains(t, config, strconv.Quote(string(v[1])), "services/internal/config does not know %s", v[1])
	}
}

// TestComposeServicesHaveTheirOwnBrokerUsers: every service that uses the broker connects
// as a user of its own, which broker-setup creates (with the operator's user, through
// the management API) before any of them starts; the signing keys are shared by each
// producer and its consumer.
func TestComposeServicesHaveTheirOwnBrokerUsers(t *testing.T) {
	t.Parallel()
	project := loadCompose(t, "ATES_TASKS_AMQP_PASSWORD=tasks-secret")
	setup, err := project.GetService("broker-setup")
	require.NoError(t, err)
	require.Equal(t, types.ShellCommand{"broker", "setup", "--management", "http://rabbitmq:15672"}, setup.Command)
	require.Equal(t, types.ServiceConditionHealthy, setup.DependsOn["rabbitmq"].Condition)

	users := map[string]bool{}
	for _, name := range []string{"tasks", "taskhandler", "dailyaccounting", "mailsender"} {
		env := setup.Environment
		raw := *env["ATES_"+strings.ToUpper(name)+"_AMQP_URL"]
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.Equal(t, "ates-"+name, u.User.Username(), "%s has a user of its own", name)
		require.Equal(t, "rabbitmq:5672", u.Host)
		users[u.User.Username()] = true
		svc, err := project.GetService(name)
		require.NoError(t, err)
		require.Equal(t, raw, *svc.Environment["ATES_"+strings.ToUpper(name)+"_AMQP_URL"], "%s connects as the user broker-setup creates", name)
	}
	require.Len(t, users, 4)
	tasksURL, _ := url.Parse(*setup.Environment["ATES_TASKS_AMQP_URL"])
	password, _ := tasksURL.User.Password()
	require.Equal(t, "tasks-secret", password, "passwords come from the environment")
}
