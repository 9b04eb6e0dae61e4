-- name: SentMailInsert :execrows
-- Claims an event; zero rows means it was mailed already (or is being mailed right now
-- by a transaction that holds the row).
INSERT INTO sent_mails (event_id, user_id, email, business_date)
VALUES ($1, $2, $3, $4)
ON CONFLICT (event_id) DO NOTHING;
