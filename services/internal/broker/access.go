package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// DenyAll is the permission pattern that matches no name.
const DenyAll = "^$"

// Grant is one broker user and what it may do, in RabbitMQ's terms: configure, write
// and read permissions are regular expressions over exchange and queue names (see
// RabbitMQ's access control guide for which operation needs which), and the topic
// permissions are regular expressions over the routing keys the user may publish with
// (TopicWrite) and bind with (TopicRead) on the events exchange.
type Grant struct {
	// User and Password log the user in.
	User, Password string
	// Tags are RabbitMQ user tags, e.g. "administrator" for an operator.
	Tags []string
	// Configure, Write and Read are the user's permissions on the virtual host.
	Configure, Write, Read string
	// TopicWrite and TopicRead are the user's topic permissions on Topology.Exchange;
	// both empty records none, which RabbitMQ takes as every routing key.
	TopicWrite, TopicRead string
}

// Topology is every exchange and queue aTES needs: the events exchange (with its
// dead-letter exchange Exchange+".dlx") and the consumers' queues.
type Topology struct {
	Exchange string
	Queues   []QueueSpec
	// RetryTTL, when positive, bounds how long any message stays in a retry queue (a
	// policy's message-ttl; the lower of it and a message's own expiration applies). A
	// retry queue expires only the message at its head, and every consumer may write to
	// every retry queue (the dead-letter exchange is direct: no per-key permissions), so
	// without a bound one message put there without an expiration would hold back all
	// the queue's retries for ever. Set it to the consumers' longest retry delay
	// (ATES_EVENT_RETRY_MAX): a shorter one only brings retries back sooner.
	RetryTTL time.Duration
}

// RetryPolicy is the name of the policy that carries Topology.RetryTTL for exchange's
// queues.
func RetryPolicy(exchange string) string { return exchange + ".retry-ttl" }

// Definitions renders topology and grants as a RabbitMQ definitions document: the JSON
// that `rabbitmqctl import_definitions` reads and that a node loads at boot with the
// load_definitions setting. Importing it creates or updates the users (with their
// passwords, salted and hashed here), their permissions, the exchanges, queues and
// bindings, and the retry queues' policy (Topology.RetryTTL); it deletes nothing. The queues are declared with exactly the arguments
// Conn.DeclareQueue uses.
func Definitions(top Topology, grants []Grant) ([]byte, error) {
	type obj = map[string]any
	const vhost = "/"
	dlx := top.Exchange + ".dlx"
	users, perms, topics := []obj{}, []obj{}, []obj{}
	for _, g := range grants {
		if g.User == "" || g.Password == "" {
			return nil, fmt.Errorf("grant for user %q: the user and the password must not be empty", g.User)
		}
		users = append(users, obj{
			"name": g.User, "password_hash": passwordHash(g.Password),
			"hashing_algorithm": "rabbit_password_hashing_sha256", "tags": append([]string{}, g.Tags...),
		})
		perms = append(perms, obj{"user": g.User, "vhost": vhost, "configure": g.Configure, "write": g.Write, "read": g.Read})
		if g.TopicWrite != "" || g.TopicRead != "" {
			topics = append(topics, obj{"user": g.User, "vhost": vhost, "exchange": top.Exchange,
				"write": g.TopicWrite, "read": g.TopicRead})
		}
	}
	exchanges := []obj{
		{"name": top.Exchange, "vhost": vhost, "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": obj{}},
		{"name": dlx, "vhost": vhost, "type": "direct", "durable": true, "auto_delete": false, "internal": false, "arguments": obj{}},
	}
	queues, bindings := []obj{}, []obj{}
	bind := func(source, queue, key string) {
		bindings = append(bindings, obj{"source": source, "vhost": vhost, "destination": queue,
			"destination_type": "queue", "routing_key": key, "arguments": obj{}})
	}
	for _, spec := range top.Queues {
		spec, err := spec.withDefaults()
		if err != nil {
			return nil, err
		}
		for _, q := range queueDecls(spec, dlx) {
			queues = append(queues, obj{"name": q.name, "vhost": vhost, "durable": true, "auto_delete": false, "arguments": q.args})
			bind(dlx, q.name, q.name)
		}
		for _, key := range spec.RoutingKeys {
			bind(top.Exchange, spec.Name, key)
		}
	}
	policies := []obj{}
	if top.RetryTTL > 0 && len(top.Queues) > 0 {
		retries := make([]string, len(top.Queues))
		for i, spec := range top.Queues {
			retries[i] = regexp.QuoteMeta(RetryQueue(spec.Name))
		}
		policies = append(policies, obj{
			"vhost": vhost, "name": RetryPolicy(top.Exchange), "pattern": "^(" + strings.Join(retries, "|") + ")$",
			"apply-to": "queues", "priority": 0,
			"definition": obj{"message-ttl": max(top.RetryTTL.Milliseconds(), 1)},
		})
	}
	return json.MarshalIndent(obj{
		"vhosts":            []obj{{"name": vhost}},
		"policies":          policies,
		"users":             users,
		"permissions":       perms,
		"topic_permissions": topics,
		"exchanges":         exchanges,
		"queues":            queues,
		"bindings":          bindings,
	}, "", "  ")
}

// passwordHash is RabbitMQ's rabbit_password_hashing_sha256 of password: base64 of a
// random 4-byte salt followed by SHA-256(salt + password).
func passwordHash(password string) string {
	salt := make([]byte, 4)
	_, _ = rand.Read(salt)
	sum := sha256.Sum256(append(append([]byte{}, salt...), password...))
	return base64.StdEncoding.EncodeToString(append(salt, sum[:]...))
}

// ImportDefinitions loads a definitions document (see Definitions) into the local node
// with rabbitmqctl, which must be on PATH and allowed to reach the node (run it as root
// or as the rabbitmq user, on the broker's host). RabbitMQ offers no user management over
// AMQP, and this needs no management plugin.
func ImportDefinitions(ctx context.Context, defs []byte) error {
	return rabbitmqctl(ctx, defs, "import_definitions", "--format", "json")
}

// ImportDefinitionsHTTP loads a definitions document (see Definitions) through the
// management plugin's HTTP API at base (e.g. "http://rabbitmq:15672"), as user, who must
// be an administrator: for a broker on another host, such as compose's.
func ImportDefinitionsHTTP(ctx context.Context, base, user, password string, defs []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/api/definitions", bytes.NewReader(defs))
	if err != nil {
		return fmt.Errorf("import definitions: %w", err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("import definitions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("import definitions through %s: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// DeleteUser deletes a broker user with rabbitmqctl; a user that does not exist is no
// error.
func DeleteUser(ctx context.Context, user string) error {
	err := rabbitmqctl(ctx, nil, "delete_user", user)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	return err
}

// ClearPolicy deletes a policy (such as RetryPolicy's) with rabbitmqctl; a policy that
// does not exist is no error.
func ClearPolicy(ctx context.Context, name string) error {
	err := rabbitmqctl(ctx, nil, "clear_policy", name)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	return err
}

// rabbitmqctl runs rabbitmqctl, found on PATH or where Debian's rabbitmq-server puts it
// (sbin directories are not on every user's PATH).
func rabbitmqctl(ctx context.Context, stdin []byte, args ...string) error {
	path, err := exec.LookPath("rabbitmqctl")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rabbitmqctl", "/usr/local/sbin/rabbitmqctl"} {
			if _, serr := os.Stat(p); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: rabbitmqctl (from rabbitmq-server) is not on PATH nor in /usr/sbin or /usr/local/sbin: run this on the broker's host", args[0])
	}
	cmd := exec.CommandContext(ctx, path, append([]string{"--quiet"}, args...)...) //nolint:gosec // G204: path is rabbitmqctl found on PATH or /usr/sbin; args are the command's own
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("rabbitmqctl %s (run it as root or the rabbitmq user, which can read the node's Erlang cookie): %w: %s",
			args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}
