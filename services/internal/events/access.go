package events

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ates/ates/services/internal/broker"
)

// The services that connect to the broker, each as its own user (Grants).
const (
	Tasks           = "tasks"
	Taskhandler     = "taskhandler"
	Dailyaccounting = "dailyaccounting"
	Mailsender      = "mailsender"
)

// BrokerServices are the services that connect to the broker, sorted.
var BrokerServices = []string{Dailyaccounting, Mailsender, Taskhandler, Tasks}

// Names are the exchange and queues the permissions are about: the production names, or a
// test's private ones.
type Names struct {
	Exchange         string
	TaskhandlerQueue string
	MailsenderQueue  string
}

// Login is one broker user's name and password.
type Login struct {
	User, Password string
}

// Topology is every exchange and queue of aTES under names.
func Topology(n Names) broker.Topology {
	return broker.Topology{
		Exchange: n.Exchange,
		Queues:   []broker.QueueSpec{TaskhandlerQueueSpec(n.TaskhandlerQueue), MailsenderQueueSpec(n.MailsenderQueue)},
	}
}

// Grants is aTES's broker permission table: each service's user may do what the service
// does, and nothing else. Publishers write only to the events exchange, and only under
// the routing keys of the events they produce (and Check's probe key); consumers read only
// their own queue and write only to the dead-letter exchange (their retry and
// dead-letter copies). No service may configure anything: the topology is declared by
// `ates broker setup` as an administrator, and a service only checks that it exists (so
// no service can delete or rebind a queue). Passive declares, which the services use to
// check the topology and read queue depths, need no permission.
//
// logins maps a service name (Tasks, ...) to its user; services without one are left
// out (they connect with the shared ATES_AMQP_URL). admin, when its user is set, is an
// operator user with every permission (the `ates dlq` commands, and a broker whose
// definitions are loaded at boot, which then creates no default user).
func Grants(n Names, logins map[string]Login, admin Login) ([]broker.Grant, error) {
	x, dlx := n.Exchange, n.Exchange+".dlx"
	only := func(names ...string) string {
		quoted := make([]string, len(names))
		for i, s := range names {
			quoted[i] = regexp.QuoteMeta(s)
		}
		return "^(" + strings.Join(quoted, "|") + ")$"
	}
	table := map[string]broker.Grant{
		Tasks: {
			Configure: broker.DenyAll, Write: only(x), Read: broker.DenyAll,
			TopicWrite: only(TaskCreate, TaskComplete, TaskAssign, TasksReassign, broker.ProbeRoutingKey),
			TopicRead:  broker.DenyAll,
		},
		Dailyaccounting: {
			Configure: broker.DenyAll, Write: only(x), Read: broker.DenyAll,
			TopicWrite: only(SendEmail, broker.ProbeRoutingKey), TopicRead: broker.DenyAll,
		},
		Taskhandler: {
			Configure: broker.DenyAll, Write: only(dlx), Read: only(n.TaskhandlerQueue),
			TopicWrite: broker.DenyAll, TopicRead: broker.DenyAll,
		},
		Mailsender: {
			Configure: broker.DenyAll, Write: only(dlx), Read: only(n.MailsenderQueue),
			TopicWrite: broker.DenyAll, TopicRead: broker.DenyAll,
		},
	}
	var grants []broker.Grant
	seen := map[string]string{}
	for _, svc := range BrokerServices {
		l, ok := logins[svc]
		if !ok || l.User == "" {
			continue
		}
		if other, dup := seen[l.User]; dup {
			return nil, fmt.Errorf("services %s and %s log in as the same broker user %q; each needs its own", other, svc, l.User)
		}
		seen[l.User] = svc
		g := table[svc]
		g.User, g.Password = l.User, l.Password
		grants = append(grants, g)
	}
	for svc := range logins {
		if !slices.Contains(BrokerServices, svc) {
			return nil, fmt.Errorf("no broker permissions are defined for service %q", svc)
		}
	}
	if admin.User != "" {
		if svc, dup := seen[admin.User]; dup {
			return nil, fmt.Errorf("the administrator and service %s log in as the same broker user %q", svc, admin.User)
		}
		grants = append(grants, broker.Grant{
			User: admin.User, Password: admin.Password, Tags: []string{"administrator"},
			Configure: ".*", Write: ".*", Read: ".*",
		})
	}
	return grants, nil
}
