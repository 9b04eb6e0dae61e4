package server_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/fuzzcheck"
	"github.com/ates/ates/services/internal/server"
)

// The fuzz targets below send any JSON body (and any {id} in the path) of each REST write
// call the way a request reaches its handler: decoded by the gateway's marshaler, marshalled
// to the gRPC server, unmarshalled there and validated. A body must be refused or reach the
// handler holding what the field rules promise, and survive re-encoding unchanged.

const exampleID = "0b5b9c3e-8f7d-4a51-9a57-3c2d7e1f0a42"

func FuzzCreateTaskJSON(f *testing.F) {
	fuzzJSON(f, nil, func(t *testing.T, m *tasksv1.CreateTaskRequest) {
		fuzzcheck.Printable(t, "description", m.GetDescription(), 2000)
		fuzzcheck.OptionalUUID(t, m.GetRequestId())
	},
		`{"description":"Fix the printer"}`,
		`{"description":"Fix the printer","wait":true,"request_id":"`+exampleID+`"}`,
		`{"description":" \u00a0\t"}`,
		`{"description":"a\u0000b"}`,
		`{"description":"\ud800"}`,
		`{"description":"x","unknown":1}`,
		`{"description":"x"} {"description":"y"}`,
		`{"description":"x","description":"y"}`,
		`{"wait":"true"}`,
		`[]`, `null`, ``,
	)
}

func FuzzCompleteTaskJSON(f *testing.F) {
	fuzzJSON(f, func(m *tasksv1.CompleteTaskRequest, id string) { m.Id = id }, func(t *testing.T, m *tasksv1.CompleteTaskRequest) {
		fuzzcheck.UUIDs(t, m.GetId())
		fuzzcheck.OptionalUUID(t, m.GetRequestId())
	},
		`{}`,
		`{"wait":true,"request_id":"`+exampleID+`"}`,
		`{"id":"`+exampleID+`"}`,
		`{"request_id":"`+exampleID[1:]+`"}`,
		``,
	)
}

func FuzzAssignTaskJSON(f *testing.F) {
	fuzzJSON(f, func(m *tasksv1.AssignTaskRequest, id string) { m.Id = id }, func(t *testing.T, m *tasksv1.AssignTaskRequest) {
		fuzzcheck.UUIDs(t, m.GetId())
		fuzzcheck.OptionalUUID(t, m.GetAssigneeId())
		fuzzcheck.OptionalUUID(t, m.GetRequestId())
	},
		`{}`,
		`{"assignee_id":"`+exampleID+`","wait":true,"request_id":"`+exampleID+`"}`,
		`{"assigneeId":"`+exampleID+`"}`,
		`{"assignee_id":"{`+exampleID+`}"}`,
	)
}

func FuzzReassignTasksJSON(f *testing.F) {
	fuzzJSON(f, nil, func(t *testing.T, m *tasksv1.ReassignTasksRequest) {
		fuzzcheck.OptionalUUID(t, m.GetRequestId())
	},
		`{}`,
		`{"wait":true,"request_id":"`+exampleID+`"}`,
		`{"request_id":"urn:uuid:`+exampleID+`"}`,
	)
}

func FuzzRegisterJSON(f *testing.F) {
	fuzzJSON(f, nil, func(t *testing.T, m *authv1.RegisterRequest) {
		fuzzcheck.Printable(t, "name", m.GetName(), 100)
		fuzzcheck.Email(t, m.GetEmail(), 254)
		if r := m.GetRole(); r < authv1.Role_ROLE_WORKER || r > authv1.Role_ROLE_ACCOUNTANT {
			t.Fatalf("accepted role %v", r)
		}
		fuzzcheck.Runes(t, "photo_hash", m.GetPhotoHash(), 8, 512)
		fuzzcheck.OptionalUUID(t, m.GetRequestId())
	},
		`{"name":"Ann","email":"ann@example.com","role":"ROLE_WORKER","photo_hash":"0123456789abcdef"}`,
		`{"name":"Ann","email":"ann@example.com","role":1,"photo_hash":"0123456789abcdef","request_id":"`+exampleID+`"}`,
		`{"name":"Ann\r\nBcc: x@example.com","email":"ann@example.com","role":"ROLE_ADMIN","photo_hash":"0123456789abcdef"}`,
		`{"name":"Ann","email":"ann@example.com\r\n","role":"ROLE_WORKER","photo_hash":"0123456789abcdef"}`,
		`{"name":"Ann","email":"ann@example.com","role":99,"photo_hash":"0123456789abcdef"}`,
		`{"name":"Ann","email":"ann@example.com","role":"ROLE_UNSPECIFIED","photo_hash":"short"}`,
	)
}

func FuzzLoginJSON(f *testing.F) {
	fuzzJSON(f, nil, func(t *testing.T, m *authv1.LoginRequest) {
		fuzzcheck.Runes(t, "photo_hash", m.GetPhotoHash(), 8, 512)
	},
		`{"photo_hash":"0123456789abcdef"}`,
		`{"photoHash":"0123456789abcdef"}`,
		`{"photo_hash":"1234567"}`,
		`{"photo_hash":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}`,
	)
}

// fuzzJSON fuzzes the REST body of T's call, and its {id} path parameter when setID puts
// it in the request (nil for calls without one); accepted requests go to check.
func fuzzJSON[T proto.Message](f *testing.F, setID func(T, string), check func(*testing.T, T), bodies ...string) {
	f.Helper()
	for _, body := range bodies {
		f.Add(body, exampleID)
	}
	f.Add(bodies[0], "")
	f.Add(bodies[0], "not-a-uuid")
	marshaler := server.GatewayMarshaler()
	validator, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	var zero T
	newT := func() T { return zero.ProtoReflect().New().Interface().(T) }
	f.Fuzz(func(t *testing.T, body, id string) {
		// As the generated gateway handler: one JSON value from the body (an empty body
		// is an empty request), then the path parameter.
		req := newT()
		if err := marshaler.NewDecoder(bytes.NewReader([]byte(body))).Decode(req); err != nil && !errors.Is(err, io.EOF) {
			return
		}
		if setID != nil {
			if !utf8.ValidString(id) {
				return // the HTTP side refuses it: TestRESTRefusesTextThatIsNotUTF8
			}
			setID(req, id)
		}
		// The gateway calls the gRPC server, which unmarshals and validates.
		wire, err := proto.Marshal(req)
		if err != nil {
			t.Fatalf("the gateway decoded %q into %v, which gRPC cannot send: %v", body, req, err)
		}
		got := newT()
		if err := proto.Unmarshal(wire, got); err != nil || !proto.Equal(got, req) {
			t.Fatalf("%v reaches the gRPC server as %v (%v)", req, got, err)
		}
		if err := validator.Validate(got); err != nil {
			return
		}
		check(t, got)
		// What was accepted re-encodes to JSON that decodes to the same request.
		text, err := marshaler.Marshal(got)
		if err != nil {
			t.Fatalf("marshal %v: %v", got, err)
		}
		again := newT()
		if err := marshaler.Unmarshal(text, again); err != nil || !proto.Equal(again, got) {
			t.Fatalf("%v re-decodes from %s as %v (%v)", got, text, again, err)
		}
	})
}
