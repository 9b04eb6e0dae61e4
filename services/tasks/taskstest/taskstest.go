// Package taskstest runs the task lifecycle for tests: a real auth service, the tasks API
// and taskhandler, on a private database, exchange and queue.
package taskstest

import (
	"log/slog"
	"testing"

	"google.golang.org/grpc"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/taskhandler"
	"github.com/ates/ates/services/tasks"
)

// Env is a running task lifecycle.
type Env struct {
	*authtest.Env
	// Deps are the tasks API's connections; taskhandler has its own, as in production.
	Deps  *app.Deps
	Queue string
	Tasks tasksv1.TaskServiceClient
	// TasksConn is Tasks's connection, for the other services on the port (health).
	TasksConn *grpc.ClientConn
	TasksHTTP string
}

// Options changes what Start runs.
type Options struct {
	// NoTaskhandler leaves events in the queue, for tests that deliver them by hand.
	NoTaskhandler bool
	// Edit changes the configuration before the services are built.
	Edit func(*config.Config)
	// EditAuth changes auth's configuration (nil: the defaults).
	EditAuth func(*config.Config)
	// APIBroker changes the tasks API's broker connection (not taskhandler's), e.g. to
	// reach the broker through a brokertest.Proxy.
	APIBroker func(*broker.Config)
	// Log receives the tasks API's and taskhandler's logs; discarded if nil.
	Log *slog.Logger
}

// Start runs auth, the tasks API and (unless opts say otherwise) taskhandler until the
// test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	env := &Env{Env: authtest.StartWith(t, pool, opts.EditAuth)}
	exchange, queues := brokertest.Names(t, "taskhandler")
	env.Queue = queues[0]
	cfg := env.Config
	cfg.Exchange = exchange
	cfg.Queues.Taskhandler = env.Queue
	cfg.TasksListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	cfg.TaskhandlerListen = config.Listen{HTTP: "127.0.0.1:0"}
	if opts.Edit != nil {
		opts.Edit(&cfg)
	}
	env.Config = cfg
	env.Deps = &app.Deps{Pool: pool, Broker: brokertest.DialWith(t, exchange, func(c *broker.Config) {
		c.Signer = cfg.EventKeysOf(events.Tasks) // as app.Open sets it
		if opts.APIBroker != nil {
			opts.APIBroker(c)
		}
	}), Auth: env.Authenticator(t)}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	handlerDeps := &app.Deps{Pool: pool, Broker: brokertest.Dial(t, exchange)}
	handler, err := taskhandler.New(cfg, handlerDeps, log)
	if err != nil {
		t.Fatalf("build taskhandler: %v", err)
	}
	// The queue exists before the API publishes, whether or not anything consumes it.
	if err := tasks.Spec.Declare(t.Context(), cfg, env.Deps); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	if !opts.NoTaskhandler {
		servertest.Serve(t, handler.Consume)
	}

	api, err := tasks.New(cfg, env.Deps, log)
	if err != nil {
		t.Fatalf("build tasks API: %v", err)
	}
	servertest.Serve(t, api.Serve)
	env.TasksHTTP = api.HTTPAddr()
	env.TasksConn = servertest.Dial(t, api.Server)
	env.Tasks = tasksv1.NewTaskServiceClient(env.TasksConn)
	return env
}
