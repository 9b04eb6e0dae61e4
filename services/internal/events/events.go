// Package events names the routing keys and queues of aTES's events, so that producers
// and consumers agree on them in one place. The payloads are the messages of
// proto/events/v1; the routing key is the event name and its schema version.
package events

import "github.com/ates/ates/services/internal/broker"

// Routing keys on the topic exchange (config.Config.Exchange).
const (
	TaskCreate    = "task_create.v1"
	TaskComplete  = "task_complete.v1"
	TaskAssign    = "task_assign.v1"
	TasksReassign = "tasks_reassign.v1"
	SendEmail     = "send_email.v1"
)

// Durable queues, one per consuming service; each has a dead-letter queue <name>.dead.
const (
	TaskhandlerQueue = "ates.taskhandler"
	MailsenderQueue  = "ates.mailsender"
)

// ProcessedChannel is the PostgreSQL NOTIFY channel on which taskhandler announces the
// events it has applied or rejected (their ids as payloads) and the tasks API listens.
// This is its only spelling: the notifying query takes it as a parameter.
const ProcessedChannel = "ates_processed"

// Consumers name the processed_events rows of each consuming service.
const (
	TaskhandlerConsumer = "taskhandler"
	MailsenderConsumer  = "mailsender"
)

// TaskhandlerQueueSpec is taskhandler's queue, bound to the four task events. The tasks
// API declares it too, so that no event is unroutable before taskhandler first starts;
// both must declare it identically.
func TaskhandlerQueueSpec(name string) broker.QueueSpec {
	return broker.QueueSpec{
		Name:        name,
		RoutingKeys: []string{TaskCreate, TaskComplete, TaskAssign, TasksReassign},
	}
}

// MailsenderQueueSpec is mailsender's queue, bound to send_email. dailyaccounting
// declares it too, so that summaries are routable before mailsender first starts; both
// must declare it identically.
func MailsenderQueueSpec(name string) broker.QueueSpec {
	return broker.QueueSpec{Name: name, RoutingKeys: []string{SendEmail}}
}
