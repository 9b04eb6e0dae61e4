package tasks_test

import (
	"context"
	"testing"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/tasks/taskstest"
)

// BenchmarkCreateTask measures the whole write path: gRPC call, authentication through
// auth, publish with confirm, taskhandler's transaction and the wait for its verdict.
func BenchmarkCreateTask(b *testing.B) {
	env := taskstest.Start(b, taskstest.Options{})
	for range 10 {
		env.NewUser(b, authv1.Role_ROLE_WORKER)
	}
	manager := env.NewUser(b, authv1.Role_ROLE_MANAGER)
	for _, wait := range []bool{false, true} {
		name := "answer after the broker confirms"
		if wait {
			name = "answer after taskhandler applied"
		}
		b.Run(name, func(b *testing.B) {
			ctx := manager.Context(context.Background())
			b.SetParallelism(8) // 8 callers per CPU: calls mostly wait on I/O
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "bench", Wait: wait}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
