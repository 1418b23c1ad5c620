#!/bin/sh
# Creates (or updates) the service's RabbitMQ user through the management API, as the broker's
# administrator: tag `management` (the admin backlog reads its own vhost's queues) and no other,
# and permissions on its vhost for the names under its prefix only (src/messaging/topology.ts:
# exchanges `<prefix>.*`, queues `<prefix>:*`). Idempotent; compose runs it once per `up`
# (service rabbitmq-app-user), and test/integration/docker-users.test.ts runs it against
# the local stack and then runs the service as that user.
#
# Environment: RABBITMQ_API (http://rabbitmq:15672), RABBITMQ_ADMIN_USER, RABBITMQ_ADMIN_PASSWORD,
# APP_USER (compensator), APP_PASSWORD, PREFIX (compensator), VHOST (/), NAMES (the permission
# regex, ^PREFIX[.:] unless given; the benchmark's runs use several prefixes).
set -eu

: "${RABBITMQ_API:=http://rabbitmq:15672}" "${APP_USER:=compensator}" "${PREFIX:=compensator}" "${VHOST:=/}"
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

names="${NAMES:-^$PREFIX[.:]}"
case "$names" in *'"'* | *'\'*) echo "NAMES must not contain quotes or backslashes" >&2; exit 2 ;; esac
api PUT "/api/users/$APP_USER" "{\"password\":\"$APP_PASSWORD\",\"tags\":\"management\"}"
api PUT "/api/permissions/$vhost/$APP_USER" "{\"configure\":\"$names\",\"write\":\"$names\",\"read\":\"$names\"}"
echo "RabbitMQ user $APP_USER: tag management, configure/write/read $names on vhost $VHOST"
