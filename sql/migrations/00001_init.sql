-- +goose Up
-- The whole aTES schema. Money is in whole units (bigint); business dates are calendar
-- dates in the configured business time zone, computed by the writer.

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    role          text        NOT NULL CHECK (role IN ('worker', 'manager', 'admin', 'accountant')),
    -- HMAC-SHA-256 of the photo hash under the server key; the photo hash itself is never stored.
    photo_hash_mac bytea      NOT NULL,
    active        boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_photo_hash_mac_key ON users (photo_hash_mac);
-- Random assignment draws from the active workers.
CREATE INDEX users_active_workers_idx ON users (id) WHERE role = 'worker' AND active;

CREATE TABLE tokens (
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tokens_user_id_idx ON tokens (user_id);
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);

CREATE TABLE tasks (
    id           uuid        PRIMARY KEY,
    author_id    uuid        NOT NULL REFERENCES users (id),
    assignee_id  uuid        NOT NULL REFERENCES users (id),
    description  text        NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    reward       bigint      NOT NULL CHECK (reward BETWEEN 20 AND 40),
    fee          bigint      NOT NULL CHECK (fee BETWEEN -20 AND -10),
    status       text        NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'complete')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CHECK ((status = 'complete') = (completed_at IS NOT NULL))
);
-- Listing pages newest first by (created_at, id), overall and per assignee.
CREATE INDEX tasks_created_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_assignee_created_idx ON tasks (assignee_id, created_at DESC, id DESC);
CREATE INDEX tasks_author_idx ON tasks (author_id);
-- Reassign-all walks the open tasks.
CREATE INDEX tasks_in_progress_idx ON tasks (id) WHERE status = 'in_progress';
-- Analytics: the top completed task in a range.
CREATE INDEX tasks_completed_at_idx ON tasks (completed_at, reward DESC) WHERE status = 'complete';

CREATE TABLE audit_log (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id),
    task_id       uuid        REFERENCES tasks (id),
    kind          text        NOT NULL CHECK (kind IN ('fee', 'reward', 'payout')),
    amount        bigint      NOT NULL,
    business_date date        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The event that caused the row; with kind and task it can be applied only once.
    event_id      uuid        NOT NULL,
    CHECK ((kind = 'payout') = (task_id IS NULL)),
    CHECK (CASE kind WHEN 'reward' THEN amount > 0 ELSE amount < 0 END),
    CONSTRAINT audit_log_event_key UNIQUE NULLS NOT DISTINCT (event_id, kind, task_id)
);
CREATE INDEX audit_log_user_date_idx ON audit_log (user_id, business_date, id);
CREATE INDEX audit_log_date_kind_idx ON audit_log (business_date, kind);
CREATE INDEX audit_log_task_idx ON audit_log (task_id);

-- A worker's closed day: one row per (user, day), written by the daily close.
CREATE TABLE balances (
    user_id       uuid        NOT NULL REFERENCES users (id),
    business_date date        NOT NULL,
    opening       bigint      NOT NULL CHECK (opening <= 0),
    rewards       bigint      NOT NULL CHECK (rewards >= 0),
    fees          bigint      NOT NULL CHECK (fees <= 0),
    closing       bigint      NOT NULL,
    payout        bigint      NOT NULL CHECK (payout >= 0),
    carry         bigint      NOT NULL CHECK (carry <= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, business_date),
    CHECK (closing = opening + rewards + fees),
    CHECK (payout = greatest(closing, 0) AND carry = least(closing, 0))
);
CREATE INDEX balances_date_idx ON balances (business_date);

-- Days closed so far; days close in order and only once.
CREATE TABLE closed_days (
    business_date date        PRIMARY KEY,
    closed_at     timestamptz NOT NULL DEFAULT now(),
    workers       integer     NOT NULL
);

-- Consumer de-duplication: an event id is applied once per consumer, in the same
-- transaction as its effects. The outcome lets a waiting API call learn the result.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('applied', 'rejected')),
    reason       text        NOT NULL DEFAULT '',
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);

-- Transactional outbox: events written with the change that caused them, published by a
-- relay with publisher confirms, then marked sent.
CREATE TABLE outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    routing_key  text        NOT NULL,
    message_type text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;

-- What mailsender has sent, so a redelivered send_email mails nothing twice.
CREATE TABLE sent_mails (
    event_id      uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    email         text        NOT NULL,
    business_date date        NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sent_mails;
DROP TABLE outbox;
DROP TABLE processed_events;
DROP TABLE closed_days;
DROP TABLE balances;
DROP TABLE audit_log;
DROP TABLE tasks;
DROP TABLE tokens;
DROP TABLE users;
