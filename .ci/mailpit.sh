#!/usr/bin/env bash
# Make sure a Mailpit (an SMTP sink with an HTTP API) is running for the tests:
# SMTP on $MAILPIT_SMTP_ADDR, the web UI and API on $MAILPIT_HTTP_ADDR.
# If one already answers there, do nothing; otherwise install Mailpit with
# `go install` when it is missing and start it in the background. Safe to run
# any number of times (`.ci/run` and `make test` both call it).
set -euo pipefail

MAILPIT_VERSION=${MAILPIT_VERSION:-v1.27.11}
MAILPIT_SMTP_ADDR=${MAILPIT_SMTP_ADDR:-127.0.0.1:1025}
MAILPIT_HTTP_ADDR=${MAILPIT_HTTP_ADDR:-127.0.0.1:8025}
MAILPIT_WAIT_SECONDS=${MAILPIT_WAIT_SECONDS:-20}

say() { printf 'mailpit: %s\n' "$*"; }
die() {
	printf 'mailpit: error: %s\n' "$*" >&2
	exit 1
}

# port_open HOST:PORT succeeds if something accepts TCP connections there.
port_open() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${1%:*}" "${1##*:}" 2>/dev/null
}

# find_mailpit prints the path of an installed mailpit binary, if any.
find_mailpit() {
	local dir
	if command -v mailpit; then
		return 0
	fi
	command -v go >/dev/null || return 1
	for dir in "$(go env GOBIN)" "$(go env GOPATH)/bin"; do
		if [[ -n $dir && -x $dir/mailpit ]]; then
			echo "$dir/mailpit"
			return 0
		fi
	done
	return 1
}

# http_ready succeeds if Mailpit's /readyz answers on MAILPIT_HTTP_ADDR.
http_ready() {
	if [[ -n ${bin:-} ]]; then
		"$bin" readyz --listen "$MAILPIT_HTTP_ADDR" >/dev/null 2>&1
	elif command -v curl >/dev/null; then
		curl -fsS -o /dev/null --max-time 2 "http://$MAILPIT_HTTP_ADDR/readyz"
	else
		port_open "$MAILPIT_HTTP_ADDR"
	fi
}

bin=$(find_mailpit) || bin=

smtp_up=false http_up=false
port_open "$MAILPIT_SMTP_ADDR" && smtp_up=true
port_open "$MAILPIT_HTTP_ADDR" && http_up=true
if $smtp_up && $http_up; then
	http_ready || die "something listens on $MAILPIT_HTTP_ADDR but does not answer Mailpit's /readyz; stop it or set MAILPIT_HTTP_ADDR"
	say "already running (SMTP $MAILPIT_SMTP_ADDR, HTTP http://$MAILPIT_HTTP_ADDR)"
	exit 0
fi
$smtp_up && die "$MAILPIT_SMTP_ADDR is taken but nothing answers on $MAILPIT_HTTP_ADDR: another program holds the SMTP port; stop it or set MAILPIT_SMTP_ADDR"
$http_up && die "$MAILPIT_HTTP_ADDR is taken but nothing answers on $MAILPIT_SMTP_ADDR: another program holds the HTTP port; stop it or set MAILPIT_HTTP_ADDR"

if [[ -z $bin ]]; then
	command -v go >/dev/null || die "mailpit is not installed and there is no Go toolchain to install it; install Go, or Mailpit from https://mailpit.axllent.org/docs/install/"
	say "not installed: go install github.com/axllent/mailpit@$MAILPIT_VERSION"
	go install "github.com/axllent/mailpit@$MAILPIT_VERSION" ||
		die "go install github.com/axllent/mailpit@$MAILPIT_VERSION failed (it needs the Go module proxy)"
	bin=$(find_mailpit) || die "go install succeeded but no mailpit binary is in GOBIN or \$(go env GOPATH)/bin"
fi

log=${MAILPIT_LOG:-$(mktemp "${TMPDIR:-/tmp}/mailpit.XXXXXX.log")}
# --max 0: never prune messages, a long test run must not lose the mail it checks.
# Any SMTP credentials are accepted, with or without TLS: this is a local sink.
args=(
	--smtp "$MAILPIT_SMTP_ADDR"
	--listen "$MAILPIT_HTTP_ADDR"
	--disable-version-check
	--max 0
	--smtp-auth-accept-any
	--smtp-auth-allow-insecure
)
# Its own session, so it outlives this script and the CI step's process group.
if command -v setsid >/dev/null; then
	setsid "$bin" "${args[@]}" </dev/null >"$log" 2>&1 &
else
	nohup "$bin" "${args[@]}" </dev/null >"$log" 2>&1 &
fi
pid=$!

for ((i = 0; i < MAILPIT_WAIT_SECONDS * 4; i++)); do
	if port_open "$MAILPIT_SMTP_ADDR" && http_ready; then
		say "started $bin (pid $pid; SMTP $MAILPIT_SMTP_ADDR, HTTP http://$MAILPIT_HTTP_ADDR; log $log)"
		exit 0
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		tail -n 20 "$log" >&2 || true
		die "mailpit exited at start-up; its log is $log"
	fi
	sleep 0.25
done
kill "$pid" 2>/dev/null || true
tail -n 20 "$log" >&2 || true
die "mailpit did not answer on $MAILPIT_SMTP_ADDR and http://$MAILPIT_HTTP_ADDR within ${MAILPIT_WAIT_SECONDS}s; its log is $log"
