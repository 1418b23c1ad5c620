#!/bin/sh
# Creates (or updates) a RabbitMQ user through the management API, as the broker's administrator.
#
# ROLE=service (the default): the service's user. Tag `management` (the admin backlog reads its
# own vhost's queues) and no other; permissions on its vhost for the names under its prefix only
# (src/messaging/topology.ts: exchanges `<prefix>.*`, queues `<prefix>:*`), and write on the
# default exchange, through which it answers payment intents to their reply queues. Compose runs
# it once per `up` (service rabbitmq-app-user); test/integration/docker-users.test.ts runs it
# against the local stack and then runs the service as that user.
#
# ROLE=checkout: a checkout that publishes payment intents (README.md, "Payment intents over
# RabbitMQ"). No tags (never `impersonator`: it could forge the user-id that proves an intent);
# write on `<prefix>.intake` only; configure and read on server-named queues (`amq.gen-*`) for
# its replies. No read on `<prefix>.events`, which carries every merchant's outcomes.
#
# Idempotent. Environment: RABBITMQ_API (http://rabbitmq:15672), RABBITMQ_ADMIN_USER,
# RABBITMQ_ADMIN_PASSWORD, APP_USER (compensator), APP_PASSWORD, PREFIX (compensator), VHOST (/),
# NAMES (the service's permission regex, ^PREFIX[.:] unless given; the benchmark's runs use
# several prefixes), ROLE (service).
set -eu

: "${RABBITMQ_API:=http://rabbitmq:15672}" "${APP_USER:=compensator}" "${PREFIX:=compensator}" "${VHOST:=/}" "${ROLE:=service}"
: "${RABBITMQ_ADMIN_USER:?set RABBITMQ_ADMIN_USER}" "${RABBITMQ_ADMIN_PASSWORD:?set RABBITMQ_ADMIN_PASSWORD}"
: "${APP_PASSWORD:?set APP_PASSWORD, the service user's password}"

# The password also sits unescaped in AMQP_URL, and the others in JSON and regular expressions.
url_safe() { case "$2" in *[!A-Za-z0-9._~-]* | '') echo "$1 must be non-empty and use only A-Z a-z 0-9 . _ ~ - (e.g. openssl rand -hex 24)" >&2; exit 2 ;; esac; }
url_safe APP_PASSWORD "$APP_PASSWORD"
url_safe APP_USER "$APP_USER"
case "$PREFIX" in *[!a-z0-9_-]* | '') echo "PREFIX must match [a-z0-9_-]+" >&2; exit 2 ;; esac
[ "$APP_USER" != "$RABBITMQ_ADMIN_USER" ] || { echo "APP_USER must not be the administrator" >&2; exit 2; }

vhost=$(printf '%s' "$VHOST" | sed 's#%#%25#g; s#/#%2F#g')
# The broker may answer its ping before the management listener or the administrator exists:
# retry for up to a minute before failing the one-shot (and so the services that wait for it).
api() { # api METHOD PATH JSON
  tries=0
  while :; do
    code=$(printf '%s' "$3" | curl -sS -o /dev/null -w '%{http_code}' -u "$RABBITMQ_ADMIN_USER:$RABBITMQ_ADMIN_PASSWORD" \
      -X "$1" -H 'content-type: application/json' --data-binary @- "$RABBITMQ_API$2" 2>/dev/null) || code=000
    case "$code" in 2??) return 0 ;; esac
    tries=$((tries + 1))
    [ "$tries" -lt "${RETRIES:-30}" ] || { echo "$1 $2 answered $code" >&2; exit 1; }
    sleep 2
  done
}

if [ "$ROLE" = checkout ]; then
  replies='^amq\\.gen-'
  api PUT "/api/users/$APP_USER" "{\"password\":\"$APP_PASSWORD\",\"tags\":\"\"}"
  api PUT "/api/permissions/$vhost/$APP_USER" "{\"configure\":\"$replies\",\"write\":\"^$PREFIX\\\\.intake\$\",\"read\":\"$replies\"}"
  echo "RabbitMQ user $APP_USER (checkout): no tags, write ^$PREFIX\\.intake\$, configure/read ^amq\\.gen- on vhost $VHOST"
  exit 0
fi
[ "$ROLE" = service ] || { echo "ROLE must be service or checkout" >&2; exit 2; }

names="${NAMES:-^$PREFIX[.:]}"
case "$names" in *'"'* | *'\'*) echo "NAMES must not contain quotes or backslashes" >&2; exit 2 ;; esac
writes="$names|^amq\\\\.default\$"
api PUT "/api/users/$APP_USER" "{\"password\":\"$APP_PASSWORD\",\"tags\":\"management\"}"
api PUT "/api/permissions/$vhost/$APP_USER" "{\"configure\":\"$names\",\"write\":\"$writes\",\"read\":\"$names\"}"
echo "RabbitMQ user $APP_USER: tag management, configure/read $names, write $writes on vhost $VHOST"
