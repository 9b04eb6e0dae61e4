-- +goose Up
-- The reassign-all operation that last moved each task. A reassign-all moves a task at
-- most once, even when a retry of it groups the open tasks into other batches (other
-- events): taskhandler skips the tasks that already carry the operation's id.
ALTER TABLE tasks ADD COLUMN reassign_op uuid;

-- +goose Down
ALTER TABLE tasks DROP COLUMN reassign_op;
