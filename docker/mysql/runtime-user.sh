# Sourced by the mysql image's entrypoint (docker-entrypoint-initdb.d) on the first start, with
# an empty data directory; it runs after the image created MYSQL_DATABASE and MYSQL_USER, the
# schema's owner that runs the migrations. This adds the service's own user, which may only read
# and write rows (DATABASE_URL). docker_process_sql is the entrypoint's root client.
# test/integration/docker-users.test.ts sources it against the local stack's MariaDB. If it
# fails (a password with other characters), the data directory already exists and a restart
# skips it: remove the volume (docker compose down -v) and start again.
: "${DB_USER:=compensator}"
case "${DB_PASSWORD:-}" in
  '' | *[!A-Za-z0-9._~-]*) echo "DB_PASSWORD must be non-empty and use only A-Z a-z 0-9 . _ ~ - (e.g. openssl rand -hex 24)" >&2; exit 2 ;;
esac
case "$DB_USER" in *[!A-Za-z0-9_]* | '') echo "DB_USER must match [A-Za-z0-9_]+" >&2; exit 2 ;; esac
[ "$DB_USER" != "${MYSQL_USER:-}" ] || { echo "DB_USER must not be MYSQL_USER, the schema's owner" >&2; exit 2; }

docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`${MYSQL_DATABASE//_/\\_}\`.* TO '$DB_USER'@'%';
SQL
echo "database user $DB_USER: SELECT, INSERT, UPDATE, DELETE on $MYSQL_DATABASE"
