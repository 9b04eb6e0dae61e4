package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
)

const brokerUsage = `usage: ates broker setup|definitions [--admin] [--management URL] [--out FILE]

  setup        create or update each service's broker user (the user and password of
               ATES_TASKS_AMQP_URL, ATES_TASKHANDLER_AMQP_URL, ATES_DAILYACCOUNTING_AMQP_URL
               and ATES_MAILSENDER_AMQP_URL; a service without one is skipped and keeps
               using ATES_AMQP_URL) with only the permissions it needs, and declare the
               exchanges and queues; through rabbitmqctl, so run it on the broker's host
               as root or the rabbitmq user. Safe to run again: it changes passwords and
               permissions to what the settings say and deletes nothing. With
               --management URL (e.g. http://rabbitmq:15672) it goes through the
               management plugin's HTTP API instead, as the user of ATES_AMQP_URL, from
               any host (compose does that).
  definitions  print the same as a RabbitMQ definitions document, for a broker that
               loads it at boot (load_definitions), to stdout or --out FILE; nothing
               is changed

  --admin      also create the user of ATES_AMQP_URL as an administrator (a broker
               that loads definitions at boot creates no default user)`

// brokerOptions are the flags of `ates broker`.
type brokerOptions struct {
	admin      bool
	out        string
	management string
}

// brokerCmd is `ates broker setup|definitions`: the broker users and topology, from the
// settings.
func brokerCmd(ctx context.Context, cfg config.Config, verb string, o brokerOptions, stdout io.Writer) error {
	defs, users, err := brokerDefinitions(cfg, o.admin)
	if err != nil {
		return err
	}
	if verb == "definitions" {
		if o.out != "" {
			return writePrivate(o.out, defs)
		}
		_, err := fmt.Fprintln(stdout, string(defs))
		return err
	}
	if o.management != "" {
		operator, err := loginOf("ATES_AMQP_URL", cfg.AMQPURL)
		if err != nil {
			return err
		}
		err = broker.ImportDefinitionsHTTP(ctx, o.management, operator.User, operator.Password, defs)
		if err != nil {
			return err
		}
	} else if err := broker.ImportDefinitions(ctx, defs); err != nil {
		return err
	}
	if len(users) == 0 {
		fmt.Fprintln(stdout, "exchanges and queues declared; no service has its own broker user (set ATES_<SERVICE>_AMQP_URL)")
		return nil
	}
	fmt.Fprintf(stdout, "exchanges and queues declared; broker users set up: %s\n", strings.Join(users, ", "))
	return nil
}

// brokerDefinitions is the definitions document of cfg's services' users (and the
// operator's, with admin) and of the production topology, and the users it names.
func brokerDefinitions(cfg config.Config, admin bool) ([]byte, []string, error) {
	operator, err := loginOf("ATES_AMQP_URL", cfg.AMQPURL)
	if err != nil {
		return nil, nil, err
	}
	logins := map[string]events.Login{}
	var users []string
	for _, svc := range events.BrokerServices {
		own := cfg.AMQPURLOf(svc)
		if own == cfg.AMQPURL {
			continue
		}
		setting := "ATES_" + strings.ToUpper(svc) + "_AMQP_URL"
		l, err := loginOf(setting, own)
		if err != nil {
			return nil, nil, err
		}
		if l.User == operator.User {
			// Setting it up would take the operator's rights away.
			return nil, nil, fmt.Errorf("%s logs in as %q, the user of ATES_AMQP_URL; give %s a user of its own", setting, l.User, svc)
		}
		logins[svc] = l
		users = append(users, fmt.Sprintf("%s (%s)", l.User, svc))
	}
	if !admin {
		operator = events.Login{}
	}
	names := events.Names{Exchange: cfg.Exchange, TaskhandlerQueue: events.TaskhandlerQueue, MailsenderQueue: events.MailsenderQueue}
	grants, err := events.Grants(names, logins, operator)
	if err != nil {
		return nil, nil, err
	}
	top := events.Topology(names)
	top.RetryTTL = cfg.EventRetryMax
	defs, err := broker.Definitions(top, grants)
	if err != nil {
		return nil, nil, err
	}
	return defs, users, nil
}

// loginOf reads the user and password of an AMQP URL.
func loginOf(setting, raw string) (events.Login, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return events.Login{}, fmt.Errorf("%s: %w", setting, err)
	}
	password, _ := u.User.Password()
	switch {
	case u.User.Username() == "" || password == "":
		return events.Login{}, fmt.Errorf("%s names no user and password", setting)
	case u.Path != "" && u.Path != "/":
		return events.Login{}, fmt.Errorf("%s: only the default virtual host / is supported, not %q", setting, strings.TrimPrefix(u.Path, "/"))
	}
	return events.Login{User: u.User.Username(), Password: password}, nil
}

// writePrivate writes data to the file path, readable and writable by its owner only,
// also when the file existed with wider permissions (which os.WriteFile would keep): the
// definitions hold password hashes.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) //nolint:gosec // G304: the file the operator named on the command line
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
