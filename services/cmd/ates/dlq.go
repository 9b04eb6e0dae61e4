package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/ates/ates/gen/events/v1" // event types, to show payloads
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
)

const dlqUsage = `usage: ates dlq list|show|replay|purge --queue QUEUE [--id ID[,ID...]] [--limit N] [--yes]

  list     the dead letters of QUEUE, oldest first: event id, type, routing key,
           attempts, when, why
  show     one dead letter in full (--id): headers and the decoded payload
  replay   publish dead letters (--id, or all) again under their original routing
           key and event id, so an event already applied is skipped; each leaves the
           dead-letter queue once the broker confirmed its copy
  purge    delete dead letters (--id, or all) for good; asks first unless --yes

QUEUE is a consumer's queue (ates.taskhandler, ates.mailsender) or its .dead queue`

// dlqOptions are the flags of `ates dlq`.
type dlqOptions struct {
	queue string
	ids   string
	limit int
	yes   bool
}

// dlq is `ates dlq VERB`: the operator's handle on dead letters.
func dlq(ctx context.Context, cfg config.Config, verb string, o dlqOptions, stdin io.Reader, stdout io.Writer) error {
	if o.queue == "" {
		return errors.New(dlqUsage)
	}
	var ids []string
	for id := range strings.SplitSeq(o.ids, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	dead := broker.DeadQueueName(o.queue)

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := broker.Dial(ctx, broker.Config{URL: cfg.AMQPURL, AppID: "ates-dlq", Exchange: cfg.Exchange})
	if err != nil {
		return err
	}
	defer conn.Close()

	switch verb {
	case "list":
		letters, err := conn.DeadLetters(ctx, dead, o.limit)
		if err != nil {
			return err
		}
		return printDeadLetters(stdout, dead, letters)
	case "show":
		if len(ids) != 1 {
			return errors.New("dlq show: give one --id")
		}
		letters, err := conn.DeadLetters(ctx, dead, 1<<30)
		if err != nil {
			return err
		}
		for _, l := range letters {
			if l.EventID == ids[0] {
				return showDeadLetter(stdout, l)
			}
		}
		return fmt.Errorf("dlq show: no event %s in %s", ids[0], dead)
	case "replay":
		replayed, err := conn.ReplayDeadLetters(ctx, dead, ids)
		for _, id := range replayed {
			fmt.Fprintf(stdout, "replayed %s\n", id)
		}
		if err != nil {
			return err
		}
		if missing := len(ids) - len(replayed); len(ids) > 0 && missing > 0 {
			return fmt.Errorf("dlq replay: %d of the ids are not in %s", missing, dead)
		}
		fmt.Fprintf(stdout, "%d replayed from %s\n", len(replayed), dead)
		return nil
	case "purge":
		what := fmt.Sprintf("every dead letter in %s", dead)
		if len(ids) > 0 {
			what = fmt.Sprintf("%d dead letter(s) from %s", len(ids), dead)
		}
		if !o.yes && !confirm(stdin, stdout, "Delete "+what+" for good? Type yes: ") {
			return errors.New("dlq purge: not confirmed; nothing deleted")
		}
		n, err := conn.PurgeDeadLetters(ctx, dead, ids)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d deleted from %s\n", n, dead)
		return nil
	}
	return fmt.Errorf("dlq: unknown action %q\n%s", verb, dlqUsage)
}

func confirm(stdin io.Reader, stdout io.Writer, prompt string) bool {
	fmt.Fprint(stdout, prompt)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

func printDeadLetters(w io.Writer, dead string, letters []broker.DeadLetter) error {
	if len(letters) == 0 {
		_, err := fmt.Fprintf(w, "%s is empty\n", dead)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT ID\tTYPE\tROUTING KEY\tATTEMPTS\tDEAD AT\tREASON")
	for _, l := range letters {
		at := "-"
		if !l.DeadAt.IsZero() {
			at = l.DeadAt.UTC().Format(time.RFC3339)
		}
		reason := strings.ReplaceAll(l.Reason, "\n", " ")
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", printable(l.EventID), printable(l.Type), printable(l.RoutingKey),
			l.Attempt, at, printable(reason))
	}
	return tw.Flush()
}

func showDeadLetter(w io.Writer, l broker.DeadLetter) error {
	fmt.Fprintf(w, "event id:     %s\ntype:         %s\nrouting key:  %s\npublished by: %s at %s\n",
		printable(l.EventID), printable(l.Type), printable(l.RoutingKey), printable(l.AppID), l.Timestamp.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "attempts:     %d\ndead at:      %s\nreason:       %s\nheaders:\n", l.Attempt, l.DeadAt.UTC().Format(time.RFC3339), printable(l.Reason))
	keys := make([]string, 0, len(l.Headers))
	for k := range l.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", printable(k), printable(fmt.Sprint(l.Headers[k])))
	}
	fmt.Fprintf(w, "payload:\n  %s\n", payloadJSON(l.Type, l.Body)) // protojson escapes control characters
	return nil
}

// printable is s with control and format characters (and bytes that are not UTF-8)
// escaped, as Go would quote them. Everything dlq prints of a message comes from whoever
// published it, and anyone who may publish can get a message into a dead-letter queue:
// raw, a terminal escape sequence could rewrite what the operator reads.
func printable(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// payloadJSON decodes body as the protobuf message type names, or says why it cannot.
func payloadJSON(typ string, body []byte) string {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return fmt.Sprintf("(%d bytes of unknown type %q)", len(body), typ)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(body, msg); err != nil {
		return fmt.Sprintf("(%d bytes that do not decode as %s: %v)", len(body), typ, err)
	}
	return protojson.MarshalOptions{UseProtoNames: true}.Format(msg)
}
