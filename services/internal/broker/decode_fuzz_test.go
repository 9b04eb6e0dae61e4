package broker

import (
	"context"
	"regexp"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/fuzzcheck"
)

// The fuzz targets below feed each consumer's events (taskhandler's four task events,
// mailsender's send_email) through the decoding every delivery goes through before its
// handler: the message_id read as the event id, then On's decode and protovalidate. Any
// input must be refused or reach the handler as an event whose fields hold what the
// handler counts on (taskhandler parses every id, mailsender the user id and the date).

const exampleID = "0b5b9c3e-8f7d-4a51-9a57-3c2d7e1f0a42"

func FuzzDecodeTaskCreate(f *testing.F) {
	fuzzDecode(f, &eventsv1.TaskCreate{TaskId: exampleID, AuthorId: exampleID, Description: "Fix the printer", Fee: -15, Reward: 30},
		func(t *testing.T, m *eventsv1.TaskCreate) {
			fuzzcheck.UUIDs(t, m.GetTaskId(), m.GetAuthorId())
			fuzzcheck.Printable(t, "description", m.GetDescription(), 2000)
			if m.GetFee() < -20 || m.GetFee() > -10 || m.GetReward() < 20 || m.GetReward() > 40 {
				t.Fatalf("accepted fee %d, reward %d outside the price ranges", m.GetFee(), m.GetReward())
			}
		})
}

func FuzzDecodeTaskComplete(f *testing.F) {
	fuzzDecode(f, &eventsv1.TaskComplete{TaskId: exampleID, WorkerId: exampleID},
		func(t *testing.T, m *eventsv1.TaskComplete) { fuzzcheck.UUIDs(t, m.GetTaskId(), m.GetWorkerId()) })
}

func FuzzDecodeTaskAssign(f *testing.F) {
	fuzzDecode(f, &eventsv1.TaskAssign{TaskId: exampleID, AssigneeId: exampleID, ActorId: exampleID},
		func(t *testing.T, m *eventsv1.TaskAssign) {
			fuzzcheck.UUIDs(t, m.GetTaskId(), m.GetActorId())
			fuzzcheck.OptionalUUID(t, m.GetAssigneeId()) // empty picks a random worker
		})
}

func FuzzDecodeTasksReassign(f *testing.F) {
	fuzzDecode(f, &eventsv1.TasksReassign{TaskIds: []string{exampleID, uuid.Nil.String()}, ActorId: exampleID, OperationId: exampleID},
		func(t *testing.T, m *eventsv1.TasksReassign) {
			if n := len(m.GetTaskIds()); n < 1 || n > 1000 {
				t.Fatalf("accepted a batch of %d tasks", n)
			}
			fuzzcheck.UUIDs(t, m.GetTaskIds()...)
			fuzzcheck.UUIDs(t, m.GetActorId())
			fuzzcheck.OptionalUUID(t, m.GetOperationId())
		})
}

// datePattern is the shape send_email's date is validated against; that the date exists
// in the calendar is mailsender's check (bizday.Parse), which dead-letters the event if not.
var datePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

func FuzzDecodeSendEmail(f *testing.F) {
	fuzzDecode(f, &eventsv1.SendEmail{UserId: exampleID, Email: "ann@example.com", Name: "Ann", Date: "2026-11-24", Opening: 10, Rewards: 30, Fees: -15, Closing: 25, Payout: 25},
		func(t *testing.T, m *eventsv1.SendEmail) {
			fuzzcheck.UUIDs(t, m.GetUserId())
			fuzzcheck.Printable(t, "name", m.GetName(), -1)
			if !datePattern.MatchString(m.GetDate()) {
				t.Fatalf("accepted date %q", m.GetDate())
			}
			fuzzcheck.Email(t, m.GetEmail(), -1)
		})
}

// fuzzDecode fuzzes the decoding of T's events from the seed valid (and a few broken
// variants of it); accepted events go to check.
func fuzzDecode[T proto.Message](f *testing.F, valid T, check func(*testing.T, T)) {
	f.Helper()
	body, err := proto.Marshal(valid)
	if err != nil {
		f.Fatal(err)
	}
	typ := string(valid.ProtoReflect().Descriptor().FullName())
	f.Add(exampleID, typ, body)
	f.Add(exampleID, typ, []byte{})
	f.Add(exampleID, typ, body[:len(body)/2])
	f.Add(exampleID, "events.v1.Other", body)
	f.Add("not-a-uuid", typ, body)
	f.Add("{"+exampleID+"}", typ, body)
	validator, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	var got Event[T]
	route := On("key", func(_ context.Context, ev Event[T]) error { got = ev; return nil })
	f.Fuzz(func(t *testing.T, eventID, typ string, body []byte) {
		// As consumer.handle: the message_id must be a UUID before the body is decoded.
		id, err := uuid.Parse(eventID)
		if err != nil {
			return
		}
		apply, err := route.decode(Delivery{EventID: eventID, Type: typ, Body: body}, id, validator)
		if err != nil {
			return
		}
		if err := apply(t.Context()); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if got.ID != id {
			t.Fatalf("event id %v, want %v", got.ID, id)
		}
		if want := string(got.Msg.ProtoReflect().Descriptor().FullName()); typ != want {
			t.Fatalf("a delivery of type %q was decoded as a %s", typ, want)
		}
		check(t, got.Msg)
		// What was accepted survives a re-encoding unchanged.
		again := got.Msg.ProtoReflect().New().Interface()
		raw, err := proto.Marshal(got.Msg)
		if err != nil {
			t.Fatalf("re-encode %v: %v", got.Msg, err)
		}
		if err := proto.Unmarshal(raw, again); err != nil || !proto.Equal(again, got.Msg) {
			t.Fatalf("%v re-decodes as %v (%v)", got.Msg, again, err)
		}
	})
}
