//go:build faulttest

package faulttest

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// setRequestID sets the `string request_id` field of a write request and reports whether
// the request has one. It goes through protobuf reflection so that the suite compiles
// before and after the field is added to tasks.v1 and auth.v1, and the retry scenario
// switches itself on with the regenerated code.
//
// TODO(request_id): once CreateTaskRequest, CompleteTaskRequest, AssignTaskRequest,
// ReassignTasksRequest and RegisterRequest all have the field, replace the reflection
// with plain assignments (req.RequestId = id) and drop hasRequestID's skip.
func setRequestID(req proto.Message, id string) bool {
	m := req.ProtoReflect()
	f := m.Descriptor().Fields().ByName("request_id")
	if f == nil || f.Kind() != protoreflect.StringKind || f.Cardinality() == protoreflect.Repeated {
		return false
	}
	m.Set(f, protoreflect.ValueOfString(id))
	return true
}

// hasRequestID reports whether the generated tasks API takes a client request_id yet.
func hasRequestID() bool {
	return setRequestID(&tasksv1.CreateTaskRequest{}, "probe") && setRequestID(&tasksv1.CompleteTaskRequest{}, "probe")
}

// ambiguous reports whether an answer leaves the outcome of a write unknown, so that a
// client must retry it with the same request_id: the broker's confirm did not come
// (Unavailable, DeadlineExceeded) or the call itself timed out.
func ambiguous(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// retryAmbiguous makes one logical write: it calls again, with the very same request
// (and so the same request_id), as long as the answer is ambiguous and budget allows,
// backing off from 200 ms to 2 s. Each attempt gets attemptTimeout. It returns how many
// attempts it made and the last answer.
func retryAmbiguous(budget, attemptTimeout time.Duration, call func(context.Context) error) (int, error) {
	deadline := time.Now().Add(budget)
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		err := call(ctx)
		cancel()
		if err == nil || !ambiguous(err) || time.Now().Add(backoff).After(deadline) {
			return attempt, err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}
