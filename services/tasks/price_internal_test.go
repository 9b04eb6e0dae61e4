package tasks

import (
	"testing"

	"github.com/stretchr/testify/require"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/taskproto"
	"github.com/ates/ates/services/tasks/internal/tasksdb"
)

// TestDrawPriceCoversTheRanges draws enough prices to see every value: each fee is in
// -20..-10 and each reward in 20..40, and both bounds of both ranges come up.
func TestDrawPriceCoversTheRanges(t *testing.T) {
	t.Parallel()
	fees, rewards := map[int64]bool{}, map[int64]bool{}
	for range 5000 {
		p := drawPrice()
		require.GreaterOrEqual(t, p.fee, int64(-20))
		require.LessOrEqual(t, p.fee, int64(-10))
		require.GreaterOrEqual(t, p.reward, int64(20))
		require.LessOrEqual(t, p.reward, int64(40))
		fees[p.fee], rewards[p.reward] = true, true
	}
	require.Len(t, fees, 11)
	require.Len(t, rewards, 21)
}

// TestStatusLabelsMatchTheAPI maps every label of the task_status enum to a status of
// the API and back, so a label added to one and not the other fails here.
func TestStatusLabelsMatchTheAPI(t *testing.T) {
	t.Parallel()
	for _, s := range tasksdb.AllTaskStatusValues() {
		api := taskproto.Status(s)
		require.NotEqual(t, tasksv1.TaskStatus_TASK_STATUS_UNSPECIFIED, api, s)
		require.Equal(t, s, taskproto.StatusLabel[tasksdb.TaskStatus](api))
	}
	require.Equal(t, tasksv1.TaskStatus_TASK_STATUS_COMPLETE, taskproto.Status(tasksdb.TaskStatusComplete))
	require.Len(t, tasksv1.TaskStatus_name, len(tasksdb.AllTaskStatusValues())+1, "one API status per label, and UNSPECIFIED")
}
