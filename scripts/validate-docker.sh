#!/usr/bin/env bash
# Validates docker/ without a Docker engine (none runs here; CI has none either).
#
#   bash scripts/validate-docker.sh
#
# What it checks, and with what:
#  1. docker/compose.yml with Debian's docker-compose (1.29, `docker-compose config -q`), once with
#     dummy values for the required secrets (must pass) and once without them (must fail: the
#     `${VAR:?}` guards work). Debian's 1.29 validates against its bundled compose-spec JSON schema
#     (additionalProperties: false everywhere), and that schema already knows every feature the
#     file uses: deploy.replicas, depends_on conditions service_healthy and
#     service_completed_successfully, healthcheck.disable, init, x- extension fields with YAML
#     anchors and merge keys. So no second schema validator (e.g. ajv against the current
#     compose-spec schema) is needed: 1.29 is the stricter of the two for this file, since it
#     rejects the newer keys (top-level `name`, depends_on `required`, healthcheck
#     `start_interval`) that an older Compose would choke on. Its schema does not enforce
#     duration formats or restart values, so those are checked here too, together with rules a
#     schema cannot express (scaled services publish no fixed port, one-shots do not restart,
#     service_healthy targets have a healthcheck, bind-mount sources exist, ...).
#  2. docker/Dockerfile against package.json: the build stage runs `npm run build` (or the exact
#     build script), package.json's build script is made of the steps this check understands (tsc
#     projects, scripts/copy-files.mjs for the files tsc does not emit, and node running a module
#     a tsc project of the build emits, as the one writing docs/openapi.json), every input of every
#     tsc project (tsconfig chain and all source files, read with the TypeScript API) and of every
#     copy is copied to the same relative place before the build, the build's outDirs (with the
#     copies' target directories inside them) are what the runtime stage copies,
#     docker/Dockerfile.dockerignore lets all of it through, and the runtime stage is a non-root
#     `npm ci --omit=dev` image with a /healthz HEALTHCHECK running package.json's main.
#  3. The app's own config loader accepts the api, worker and migrate environments from the
#     resolved compose file plus docker/compensator.json, in production mode.
#  4. docker/prometheus/prometheus.yml with promtool (Debian's `prometheus` package), and every
#     PromQL expression of the Grafana dashboard via `promtool check rules`.
#  5. Grafana provisioning (datasource uid, dashboard path) and the RabbitMQ files (with `erl`
#     when it is installed, as the local stack does).
#
# Installs what is missing with apt-get (needs root, as on the project's machines and CI).
# Exits non-zero, naming each problem, when anything fails.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

COMPOSE_FILE=docker/compose.yml
DOCKERFILE=docker/Dockerfile
problems=0
fail() { echo "FAIL: $*" >&2; problems=$((problems + 1)); }
ok() { echo "ok: $*"; }

# ---- tools -------------------------------------------------------------------------------------
apt_updated=0
apt_install() { # Debian package, what it is for
  if [ "$(id -u)" != 0 ]; then
    echo "FAIL: $2 is missing and installing Debian's $1 needs root (apt-get install --no-install-recommends $1)" >&2
    exit 1
  fi
  echo "installing Debian's $1 (for $2) ..."
  local log
  log="$(mktemp)"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >"$log" 2>&1 || { echo "FAIL: apt-get update failed:" >&2; tail -5 "$log" >&2; exit 1; }
    apt_updated=1
  fi
  # --no-install-recommends: docker-compose recommends docker.io, an engine we neither want nor can run.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >"$log" 2>&1 \
    || { echo "FAIL: apt-get install $1 failed:" >&2; tail -5 "$log" >&2; exit 1; }
  rm -f "$log"
}
ensure_tool() { # command, Debian package
  command -v "$1" >/dev/null 2>&1 && return 0
  apt_install "$2" "$1"
  command -v "$1" >/dev/null 2>&1 || { echo "FAIL: $2 installed but $1 is still not on PATH" >&2; exit 1; }
}
ensure_tool docker-compose docker-compose
ensure_tool promtool prometheus
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml "python3's yaml module"
[ -d node_modules/typescript ] || { echo "FAIL: node_modules/typescript is missing: run npm ci first" >&2; exit 1; }
echo "tools: $(docker-compose version --short 2>/dev/null || docker-compose version | head -1), $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3), node $(node --version)"

# Dummy values for the variables compose.yml requires; nothing here is a real secret.
required_env=(
  CHANNEL_SECRET_WECHAT=validate-dummy-wechat-secret
  CHANNEL_SECRET_ALIPAY=validate-dummy-alipay-secret
  MERCHANT_SECRETS_KEY=dmFsaWRhdGUtZHVtbXktbWVyY2hhbnQtc2VjcmV0cy0=
  ADMIN_TOKEN=validate-dummy-admin-token-0123456789
  DB_PASSWORD=validate-dummy-db-password
  DB_OWNER_PASSWORD=validate-dummy-db-owner-password
  RABBITMQ_PASSWORD=validate-dummy-rabbitmq-password
  RABBITMQ_ADMIN_PASSWORD=validate-dummy-rabbitmq-admin-password
  GRAFANA_ADMIN_PASSWORD=validate-dummy-grafana-password
)
required_names=(CHANNEL_SECRET_WECHAT CHANNEL_SECRET_ALIPAY MERCHANT_SECRETS_KEY ADMIN_TOKEN
  DB_PASSWORD DB_OWNER_PASSWORD RABBITMQ_PASSWORD RABBITMQ_ADMIN_PASSWORD GRAFANA_ADMIN_PASSWORD)
unset_required=()
for name in "${required_names[@]}"; do unset_required+=(-u "$name"); done

# ---- 1. compose file ---------------------------------------------------------------------------
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if env "${required_env[@]}" docker-compose -f "$COMPOSE_FILE" config -q 2>"$tmp/config-q.err"; then
  ok "docker-compose config -q accepts $COMPOSE_FILE"
else
  fail "docker-compose config -q rejects $COMPOSE_FILE: $(cat "$tmp/config-q.err")"
fi
for name in "${required_names[@]}"; do
  others=()
  for pair in "${required_env[@]}"; do [ "${pair%%=*}" = "$name" ] || others+=("$pair"); done
  if env "${unset_required[@]}" "${others[@]}" docker-compose -f "$COMPOSE_FILE" config -q 2>"$tmp/missing.err"; then
    fail "compose accepts a missing $name; it must be required with \${$name:?...}"
  elif ! grep -q "$name" "$tmp/missing.err"; then
    fail "without $name compose fails, but not naming it: $(cat "$tmp/missing.err")"
  fi
done
ok "compose refuses to start without ${required_names[*]}"
# The resolved file (interpolated, paths made absolute) feeds the checks below. Rendering it also
# converts durations, which `config -q` leaves unchecked.
if ! env "${required_env[@]}" docker-compose -f "$COMPOSE_FILE" config >"$tmp/resolved.yml" 2>"$tmp/config.err"; then
  fail "docker-compose config cannot render $COMPOSE_FILE (often a malformed duration): $(tail -1 "$tmp/config.err")"
  echo "docker/ validation FAILED: fix the compose file first; the other checks read its rendered form" >&2
  exit 1
fi

env "${required_env[@]}" python3 - "$COMPOSE_FILE" "$tmp/resolved.yml" "$tmp" <<'PY' || problems=$((problems + 1))
import json, os, re, sys, yaml

compose_file, resolved_file, tmp = sys.argv[1:4]
root = os.getcwd()
problems = []
def fail(msg): problems.append(msg); print(f"FAIL: {msg}", file=sys.stderr)
def ok(msg): print(f"ok: {msg}")

raw = yaml.safe_load(open(compose_file))
resolved = yaml.safe_load(open(resolved_file)) or {}
services = resolved.get("services", {})
expected = {"rabbitmq", "rabbitmq-app-user", "mysql", "migrate", "api", "worker", "simulator", "nginx", "prometheus", "grafana"}
if set(services) != expected:
    fail(f"services are {sorted(services)}, expected {sorted(expected)}")

duration = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
restart_ok = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
app_image = services.get("api", {}).get("image")
for name, svc in services.items():
    hc = svc.get("healthcheck") or {}
    for key in ("interval", "timeout", "start_period"):
        if key in hc and not duration.match(str(hc[key])):
            fail(f"{name}: healthcheck.{key} {hc[key]!r} is not a duration")
    if "stop_grace_period" in svc and not duration.match(str(svc["stop_grace_period"])):
        fail(f"{name}: stop_grace_period {svc['stop_grace_period']!r} is not a duration")
    if "restart" in svc and not restart_ok.match(str(svc["restart"])):
        fail(f"{name}: restart {svc['restart']!r} is not no|always|unless-stopped|on-failure[:N]")
    replicas = (svc.get("deploy") or {}).get("replicas", 1)
    if replicas > 1:
        if "container_name" in svc:
            fail(f"{name}: {replicas} replicas cannot share container_name")
        for port in svc.get("ports") or []:
            published = port.get("published") if isinstance(port, dict) else (str(port).split(":")[-2] if ":" in str(port) else None)
            if published:
                fail(f"{name}: {replicas} replicas cannot all publish host port {published}")
    for dep, cond in (svc.get("depends_on") or {}).items():
        condition = cond.get("condition") if isinstance(cond, dict) else "service_started"
        target = services.get(dep, {})
        if condition == "service_healthy":
            thc = target.get("healthcheck") or {}
            image_healthcheck = target.get("image") == app_image  # the Dockerfile's HEALTHCHECK
            if thc.get("disable") or not (thc.get("test") or image_healthcheck):
                fail(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
        if condition == "service_completed_successfully" and str(target.get("restart", "no")) != "no":
            fail(f"{name} waits for {dep} to complete, but {dep} restarts ({target.get('restart')}): set restart: \"no\"")
    # The image's HEALTHCHECK calls /healthz on PORT: processes without an HTTP server must
    # disable it or bring their own check.
    if svc.get("image") == app_image:
        env = svc.get("environment") or {}
        cmd = " ".join(svc.get("command") or ["node", "dist/main.js"])
        # Every role of dist/main.js serves /healthz on PORT (a worker serves only the ops routes).
        serves_api = cmd.endswith("dist/main.js") and env.get("ROLE", "all") in ("api", "worker", "all")
        if not serves_api and not hc.get("disable") and not hc.get("test"):
            fail(f"{name}: runs '{cmd}' (ROLE={env.get('ROLE', 'all')}) without an HTTP server on PORT, so the image's /healthz check would mark it unhealthy: disable or override it")
        if svc.get("build", {}).get("dockerfile") != "docker/Dockerfile" or os.path.realpath(svc["build"].get("context", "")) != root:
            fail(f"{name}: build must be the repository root with docker/Dockerfile")
    # Bind mounts: the source must exist. Files outside docker/ (nginx/nginx.conf) belong to
    # other parts of the repository: missing ones are a warning here.
    for vol in svc.get("volumes") or []:
        source = vol.get("source") if isinstance(vol, dict) else str(vol).split(":")[0]
        if not source or not source.startswith("/"):
            continue  # a named volume
        rel = os.path.relpath(source, root)
        if not os.path.exists(source):
            if rel.startswith("docker/"):
                fail(f"{name}: bind-mount source {rel} does not exist")
            else:
                print(f"WARNING: {name}: bind-mount source {rel} does not exist yet (owned outside docker/); "
                      f"without it Docker would create a directory there and {name} would fail to start", file=sys.stderr)
if not problems:
    ok(f"compose rules: {len(services)} services; replicas, restarts, healthchecks, depends_on targets and bind mounts are consistent")

# Hand the app's environments to the config-loader check (step 3).
app_envs = {}
for name in ("api", "worker", "migrate"):
    env = dict(services.get(name, {}).get("environment") or {})
    cfg = env.get("COMPENSATOR_CONFIG")
    for vol in services.get(name, {}).get("volumes") or []:
        parts = str(vol).split(":")
        if cfg and len(parts) >= 2 and parts[1] == cfg:
            env["COMPENSATOR_CONFIG"] = parts[0]
    app_envs[name] = env
json.dump(app_envs, open(os.path.join(tmp, "app-envs.json"), "w"))

# docker/compensator.json: every URL names a compose service. The service's RabbitMQ user is the
# one rabbitmq-app-user provisions, never the broker's administrator, and only the migration
# gets the schema owner's URL.
deploy_cfg = json.load(open("docker/compensator.json"))
def urls(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items(): yield from urls(v, f"{path}.{k}" if path else k)
    elif isinstance(node, str) and re.match(r"^https?://", node):
        yield path, node
from urllib.parse import urlparse
for path, url in urls(deploy_cfg):
    u = urlparse(url)
    if u.hostname not in services:
        fail(f"docker/compensator.json {path}: host {u.hostname!r} is not a compose service")
    if u.password:
        fail(f"docker/compensator.json {path}: a password in a file (use the environment)")
rabbit_env = services.get("rabbitmq", {}).get("environment") or {}
app_user_env = services.get("rabbitmq-app-user", {}).get("environment") or {}
mysql_env = services.get("mysql", {}).get("environment") or {}
for name in ("api", "worker", "migrate"):
    env = services.get(name, {}).get("environment") or {}
    amqp, mgmt, db = (urlparse(env.get(k, "")) for k in ("AMQP_URL", "RABBITMQ_MANAGEMENT_URL", "DATABASE_URL"))
    if not (amqp.username == mgmt.username == app_user_env.get("APP_USER") != rabbit_env.get("RABBITMQ_DEFAULT_USER")):
        fail(f"{name}: AMQP_URL and RABBITMQ_MANAGEMENT_URL must use rabbitmq-app-user's APP_USER, not the administrator")
    elif (amqp.password, mgmt.password) != (app_user_env.get("APP_PASSWORD"),) * 2:
        fail(f"{name}: the RabbitMQ password differs from rabbitmq-app-user's APP_PASSWORD")
    if (db.username, db.password) != (mysql_env.get("DB_USER"), mysql_env.get("DB_PASSWORD")) or db.username == mysql_env.get("MYSQL_USER"):
        fail(f"{name}: DATABASE_URL must be mysql's DB_USER (rows only), not the schema owner")
    owner = urlparse(env.get("MIGRATION_DATABASE_URL", ""))
    if name == "migrate" and (owner.username, owner.password) != (mysql_env.get("MYSQL_USER"), mysql_env.get("MYSQL_PASSWORD")):
        fail("migrate: MIGRATION_DATABASE_URL must be mysql's MYSQL_USER, the schema owner")
    if name != "migrate" and env.get("MIGRATION_DATABASE_URL"):
        fail(f"{name}: only the migration may know the schema owner's password")
ok("the service's URLs use its own users: rows only in the database, no administrator in RabbitMQ")

# Grafana: the dashboards provider reads the directory that compose mounts, and every panel
# uses the provisioned datasource uid.
graf = services.get("grafana", {})
mounts = {str(v).split(":")[1]: os.path.relpath(str(v).split(":")[0], root) for v in graf.get("volumes") or [] if str(v).startswith("/")}
ds_dir = next((src for dst, src in mounts.items() if dst.endswith("provisioning/datasources")), None)
db_dir = next((src for dst, src in mounts.items() if dst.endswith("provisioning/dashboards")), None)
uids = set()
for f in sorted(os.listdir(ds_dir)) if ds_dir else []:
    for ds in (yaml.safe_load(open(os.path.join(ds_dir, f))) or {}).get("datasources", []):
        uids.add(ds.get("uid"))
        if ds.get("url") != "http://prometheus:9090":
            fail(f"grafana datasource {ds.get('name')}: url {ds.get('url')} is not the prometheus service")
provider_paths = []
for f in sorted(os.listdir(db_dir)) if db_dir else []:
    for p in (yaml.safe_load(open(os.path.join(db_dir, f))) or {}).get("providers", []):
        provider_paths.append(p.get("options", {}).get("path"))
dash_dirs = [src for dst, src in mounts.items() if dst in provider_paths]
if not uids or not dash_dirs:
    fail(f"grafana provisioning incomplete: datasource uids {sorted(uids)}, dashboard dirs {dash_dirs} (provider paths {provider_paths})")
exprs = []
for d in dash_dirs:
    for f in sorted(os.listdir(d)):
        if not f.endswith(".json"): continue
        try:
            dash = json.load(open(os.path.join(d, f)))
        except ValueError as e:
            fail(f"{d}/{f} is not JSON: {e}"); continue
        def panels(ps):
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))
        for p in panels(dash.get("panels", [])):
            for t in p.get("targets", []):
                uid = (t.get("datasource") or p.get("datasource") or {}).get("uid")
                if uid not in uids:
                    fail(f"{f} panel {p.get('title')!r}: datasource uid {uid!r} is not provisioned ({sorted(uids)})")
                exprs.append((f"{f}: {p.get('title')}", t.get("expr", "")))
# PromQL syntax via promtool: Grafana's variables replaced by sample values.
subst = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$prefix": "compensator"}
rules = []
for i, (where, expr) in enumerate(exprs):
    for k, v in subst.items(): expr = expr.replace(k, v)
    if "$" in expr:
        fail(f"{where}: unknown Grafana variable in {expr!r}")
    # The record name carries the panel title, so promtool's message says which panel is wrong.
    rules.append({"record": "dashboard:" + re.sub(r"[^a-zA-Z0-9_]+", "_", where).strip("_") + f":query{i}", "expr": expr})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(os.path.join(tmp, "dashboard-rules.yml"), "w"))
if not problems:
    ok(f"grafana provisioning: datasource uid(s) {sorted(uids)}, {len(exprs)} queries in {dash_dirs}")
sys.exit(1 if problems else 0)
PY

# ---- 2. Dockerfile against package.json --------------------------------------------------------
node - "$DOCKERFILE" docker/Dockerfile.dockerignore <<'JS' || problems=$((problems + 1))
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');
const [dockerfilePath, ignorePath] = process.argv.slice(2);
const problems = [];
const fail = (m) => { problems.push(m); console.error(`FAIL: ${m}`); };
const ok = (m) => console.log(`ok: ${m}`);
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));

// Dockerfile: continuation lines joined, comments dropped, ARG defaults before FROM applied.
const lines = fs.readFileSync(dockerfilePath, 'utf8').split('\n');
const instructions = [];
for (let i = 0, buf = '', start = 0; i < lines.length; i++) {
  const line = lines[i];
  if (!buf && /^\s*(#|$)/.test(line)) continue;
  if (!buf) start = i + 1;
  if (/^\s*#/.test(line)) continue; // a comment inside a continuation
  if (/\\\s*$/.test(line)) { buf += line.replace(/\\\s*$/, ' '); continue; }
  buf += line;
  const m = buf.trim().match(/^(\w+)\s+([\s\S]*)$/);
  if (m) instructions.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start });
  buf = '';
}
const globalArgs = {};
const stages = [];
const words = (s) => (s.startsWith('[') ? JSON.parse(s) : s.split(/\s+/));
const norm = (s) => s.trim().replace(/\s+/g, ' ');
for (const ins of instructions) {
  if (ins.op === 'ARG' && stages.length === 0) {
    const [k, v] = ins.args.split('=');
    globalArgs[k] = v;
    continue;
  }
  if (ins.op === 'FROM') {
    const m = ins.args.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i);
    const image = m[1].replace(/\$\{?(\w+)\}?/g, (_, k) => globalArgs[k] ?? '');
    stages.push({ name: m[2] ?? String(stages.length), image, workdir: '/', steps: [], user: 'root', env: {}, line: ins.line });
    continue;
  }
  const stage = stages[stages.length - 1];
  if (!stage) { fail(`${dockerfilePath}:${ins.line}: ${ins.op} before FROM`); continue; }
  if (ins.op === 'WORKDIR') stage.workdir = path.posix.resolve(stage.workdir, ins.args);
  if (ins.op === 'USER') stage.user = ins.args;
  if (ins.op === 'ENV') for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[m[1]] = m[2].replace(/^"|"$/g, '');
  if (ins.op === 'COPY' || ins.op === 'ADD') {
    const parts = words(ins.args);
    const flags = parts.filter((p) => p.startsWith('--'));
    const rest = parts.filter((p) => !p.startsWith('--'));
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    const dest = path.posix.resolve(stage.workdir, rest[rest.length - 1]);
    const destIsDir = rest.length > 2 || rest[rest.length - 1].endsWith('/') || rest[rest.length - 1] === '.';
    stage.steps.push({ kind: 'copy', from, srcs: rest.slice(0, -1), dest, destIsDir, line: ins.line });
  } else if (['RUN', 'CMD', 'HEALTHCHECK', 'EXPOSE', 'ENTRYPOINT'].includes(ins.op)) {
    stage.steps.push({ kind: ins.op.toLowerCase(), args: ins.args, line: ins.line });
  }
}

// package.json's build script: only tsc projects, `node scripts/copy-files.mjs FILE... DIR`
// (cp, for what tsc does not emit) and `node dist/<module>.js ARG...` (a module the build just
// compiled, e.g. the one that writes docs/openapi.json) are understood; anything else needs a human.
const buildScript = pkg.scripts?.build;
if (!buildScript) fail('package.json has no "build" script');
const projects = [];
const copies = [];
const runs = [];
for (const part of (buildScript ?? '').split('&&').map(norm)) {
  const m = part.match(/^tsc(?:\s+(?:-p|--project)\s+(\S+))?$/);
  const c = part.match(/^node (scripts\/copy-files\.mjs)((?: [^\s$`'"*?|;&<>]+){2,})$/);
  const r = part.match(/^node (dist\/[\w./-]+\.js)((?: [^\s$`'"*?|;&<>]+)*)$/);
  if (m) projects.push(m[1] ?? 'tsconfig.json');
  else if (c) {
    const args = c[2].trim().split(' ').map((a) => path.posix.normalize(a).replace(/\/$/, ''));
    copies.push({ script: c[1], files: args.slice(0, -1), dir: args[args.length - 1] });
  } else if (r && projects.length > 0) runs.push({ script: path.posix.normalize(r[1]) });
  else fail(`package.json build script step "${part}" is not a plain "tsc -p <tsconfig>", "node scripts/copy-files.mjs FILE... DIR" or "node dist/<module>.js ARG..." after a tsc step: review ${dockerfilePath}'s build stage and update this check`);
}

// The build stage: the one stage that runs the build.
const buildRuns = [];
stages.forEach((s, si) => s.steps.forEach((st, i) => {
  if (st.kind === 'run' && (/^npm run(-script)? build$/.test(norm(st.args)) || norm(st.args) === norm(buildScript ?? '-'))) buildRuns.push({ si, i, st });
}));
if (buildRuns.length !== 1) {
  fail(`${dockerfilePath} must run "npm run build" (or "${buildScript}") in exactly one stage; found ${buildRuns.length}`);
} else {
  const { si, i, st } = buildRuns[0];
  const stage = stages[si];
  ok(`${dockerfilePath}:${st.line} runs "${norm(st.args)}" in stage "${stage.name}" = package.json build "${buildScript}"`);
  const before = stage.steps.slice(0, i);
  const copied = (rel) => before.some((c) => c.kind === 'copy' && !c.from && c.srcs.some((src) => {
    const s = path.posix.normalize(src).replace(/\/$/, '');
    if (rel === s) return (c.destIsDir ? path.posix.join(c.dest, path.posix.basename(s)) : c.dest) === path.posix.join(stage.workdir, rel);
    if (rel.startsWith(`${s}/`)) return path.posix.join(c.dest, rel.slice(s.length + 1)) === path.posix.join(stage.workdir, rel);
    return false;
  }));
  const ci = before.findIndex((st2) => st2.kind === 'run' && /\bnpm ci\b/.test(st2.args));
  if (ci < 0) fail(`stage "${stage.name}" runs no "npm ci" before the build`);
  else {
    if (/--omit[= ]dev|--production/.test(before[ci].args) && pkg.devDependencies?.typescript) fail(`stage "${stage.name}" omits devDependencies, but the build needs typescript`);
    for (const f of ['package.json', 'package-lock.json']) {
      if (!before.slice(0, ci).some((c) => c.kind === 'copy' && !c.from && c.srcs.includes(f))) fail(`stage "${stage.name}" copies no ${f} before npm ci`);
    }
  }
  // Every input of every tsc project, at the same relative place under WORKDIR.
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')) };
  const outDirs = [];
  const emitted = new Set();
  for (const project of projects) {
    let inputs = 0;
    const parsed = ts.getParsedCommandLineOfConfigFile(path.resolve(project), {}, host);
    if (!parsed) { fail(`cannot read ${project}`); continue; }
    const chain = [];
    for (let f = path.resolve(project); f; ) {
      chain.push(f);
      const ext = ts.readConfigFile(f, ts.sys.readFile).config?.extends;
      f = ext ? path.resolve(path.dirname(f), ext.endsWith('.json') ? ext : `${ext}.json`) : undefined;
    }
    const rootDir = parsed.options.rootDir ?? path.dirname(path.resolve(project));
    const outRel = path.relative(process.cwd(), parsed.options.outDir ?? '.').split(path.sep).join('/');
    for (const f of parsed.fileNames) {
      if (/\.tsx?$/.test(f) && !f.endsWith('.d.ts')) emitted.add(path.posix.join(outRel, path.relative(rootDir, f).split(path.sep).join('/').replace(/\.tsx?$/, '.js')));
    }
    const missing = [];
    for (const f of [...chain, ...parsed.fileNames]) {
      const rel = path.relative(process.cwd(), f).split(path.sep).join('/');
      inputs++;
      if (!copied(rel)) missing.push(rel);
    }
    if (missing.length) fail(`${project} reads ${missing.length} file(s) that stage "${stage.name}" does not copy to the same place under ${stage.workdir} before the build: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
    const outDir = path.relative(process.cwd(), parsed.options.outDir ?? '.').split(path.sep).join('/');
    const final = stages[stages.length - 1];
    const out = path.posix.join(stage.workdir, outDir);
    const takes = final.steps.some((c) => c.kind === 'copy' && (c.from === stage.name || c.from === String(si)) &&
      c.srcs.some((s) => path.posix.resolve(stage.workdir, s).replace(/\/$/, '') === out) && c.dest === path.posix.join(final.workdir, outDir));
    if (!takes) fail(`the runtime stage does not copy the build output ${out} (outDir of ${project}) to ${path.posix.join(final.workdir, outDir)}`);
    else {
      outDirs.push(outDir);
      ok(`${project}: ${inputs} inputs copied before the build; outDir ${outDir}/ copied into the runtime stage`);
    }
  }
  // A build step that runs a compiled module runs one that a tsc project of the build emits.
  for (const { script } of runs) {
    if (!emitted.has(script)) fail(`the build runs ${script}, which no tsc project of the build emits`);
    else ok(`the build runs ${script}, emitted by its tsc step (its output stays in the build stage)`);
  }
  // The copy steps: the script and its files are inputs too, and the target directory lies in an
  // outDir that the runtime stage takes.
  for (const { script, files, dir } of copies) {
    const missing = [script, ...files].filter((rel) => !fs.existsSync(rel) || !copied(rel));
    if (missing.length) fail(`the build's copy into ${dir}/ reads file(s) that are missing or that stage "${stage.name}" does not copy to the same place under ${stage.workdir} before the build: ${missing.join(', ')}`);
    const into = outDirs.find((o) => o === '.' || dir === o || dir.startsWith(`${o}/`));
    if (!into) fail(`the build copies ${files.join(', ')} to ${dir}/, which is in no outDir the runtime stage takes (${[...new Set(outDirs)].join(', ') || 'none'})`);
    if (!missing.length && into) ok(`${script}: ${files.length} file(s) copied before the build, into ${dir}/ inside outDir ${into}/`);
  }

  // The ignore file must let every copied context path through (last matching pattern wins; a
  // pattern that matches a parent directory matches its files).
  const patterns = fs.existsSync(ignorePath) ? fs.readFileSync(ignorePath, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) : [];
  const toRe = (p) => new RegExp(`^${p.replace(/^\//, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\/?/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*')}$`);
  const rules = patterns.map((p) => ({ exclude: !p.startsWith('!'), re: toRe(p.replace(/^!/, '')) }));
  const ignored = (rel) => {
    let out = false;
    const segs = rel.split('/');
    for (const r of rules) {
      for (let n = 1; n <= segs.length; n++) if (r.re.test(segs.slice(0, n).join('/'))) { out = r.exclude; break; }
    }
    return out;
  };
  const walk = (p) => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).flatMap((e) => walk(path.posix.join(p, e))) : [p]);
  const contextFiles = stages.flatMap((s) => s.steps.filter((c) => c.kind === 'copy' && !c.from).flatMap((c) => c.srcs.flatMap((src) => (fs.existsSync(src) ? walk(path.posix.normalize(src).replace(/\/$/, '')) : (fail(`COPY source ${src} does not exist`), [])))));
  const blocked = contextFiles.filter(ignored);
  if (!fs.existsSync(ignorePath)) fail(`${ignorePath} is missing: the whole repository (.git, node_modules, .stack) would be sent as context`);
  else if (blocked.length) fail(`${ignorePath} excludes files the Dockerfile copies: ${blocked.slice(0, 5).join(', ')}`);
  else if (!ignored('node_modules/x') || !ignored('.git/HEAD') || !ignored('.stack/x') || !ignored('dist/main.js')) fail(`${ignorePath} must exclude node_modules, .git, .stack and dist`);
  else ok(`${ignorePath} lets the ${contextFiles.length} copied files through and keeps node_modules, dist, .git and .stack out`);
}

// The runtime stage.
const final = stages[stages.length - 1];
const engines = Number((pkg.engines?.node ?? '').match(/\d+/)?.[0] ?? 0);
const imageMajor = Number(final.image.match(/^node:(\d+)/)?.[1] ?? NaN);
if (!(imageMajor >= engines)) fail(`runtime image ${final.image} does not satisfy engines.node ${pkg.engines?.node}`);
// Every stage's base is pinned by digest, so a rebuild gets the same base (the Dockerfile says how to refresh it).
for (const s of stages) if (!/@sha256:[0-9a-f]{64}$/.test(s.image) && !stages.some((o) => o.name === s.image)) fail(`stage ${s.name}: base image ${s.image} is not pinned by digest (name@sha256:<64 hex>)`);
if (!final.steps.some((s) => s.kind === 'run' && /\bnpm ci\b.*--omit[= ]dev/.test(s.args))) fail('the runtime stage must install with "npm ci --omit=dev"');
if (['root', '0', ''].includes(final.user.split(':')[0])) fail('the runtime stage runs as root: add USER node');
if (final.env.NODE_ENV !== 'production') fail('the runtime stage must set NODE_ENV=production');
const healthcheck = final.steps.find((s) => s.kind === 'healthcheck');
if (!healthcheck || !/\/healthz/.test(healthcheck.args)) fail('the runtime stage has no HEALTHCHECK on /healthz');
const port = JSON.parse(fs.readFileSync('config/default.json', 'utf8')).http?.port;
if (!final.steps.some((s) => s.kind === 'expose' && s.args.split(/\s+/).includes(String(port)))) fail(`the runtime stage does not EXPOSE ${port} (config http.port)`);
const cmd = final.steps.filter((s) => s.kind === 'cmd').pop();
if (!cmd || norm(words(cmd.args).join(' ')) !== `node ${pkg.main}`) fail(`CMD must be "node ${pkg.main}" (package.json main), got ${cmd?.args}`);
if (!final.steps.some((c) => c.kind === 'copy' && !c.from && c.srcs.includes('config') && c.dest === path.posix.join(final.workdir, 'config'))) fail('the runtime stage must copy config/ to <WORKDIR>/config (dist/config/config-loader.js reads ../../config)');
if (!problems.length) ok(`runtime stage "${final.name}" on ${final.image}: NODE_ENV=production, npm ci --omit=dev, USER ${final.user}, EXPOSE ${port}, HEALTHCHECK /healthz, CMD node ${pkg.main}`);
process.exit(problems.length ? 1 : 0);
JS

# ---- 3. the app's config loader accepts the compose environments -------------------------------
if [ -s "$tmp/app-envs.json" ]; then
  npx --no-install tsx -e "
    const { loadConfig } = require('./src/config/config-loader');
    const envs = require('$tmp/app-envs.json');
    let bad = 0;
    for (const [service, env] of Object.entries(envs)) {
      try {
        const { config, warnings } = loadConfig({ env, argv: [] });
        if (env.NODE_ENV !== 'production') throw new Error('NODE_ENV is not production');
        if (warnings.length) throw new Error('warnings: ' + warnings.join('; '));
        const adapters = Object.entries(config.channels).map(([n, c]) => n + '=' + c.adapter.type + (c.adapter.baseUrl ? ' ' + c.adapter.baseUrl : '')).join(', ');
        console.log('ok: ' + service + ': production config loads (role ' + config.role + '; ' + adapters + ')');
      } catch (err) { bad++; console.error('FAIL: ' + service + ': the config loader rejects the compose environment: ' + err.message); }
    }
    process.exit(bad ? 1 : 0);
  " || problems=$((problems + 1))
fi

# ---- 4. Prometheus config and the dashboard's PromQL -------------------------------------------
if out="$(promtool check config docker/prometheus/prometheus.yml 2>&1)"; then
  ok "promtool check config docker/prometheus/prometheus.yml"
else
  fail "promtool rejects docker/prometheus/prometheus.yml: $out"
fi
if [ -s "$tmp/dashboard-rules.yml" ]; then
  if out="$(promtool check rules "$tmp/dashboard-rules.yml" 2>&1)"; then
    ok "promtool parses all $(grep -c 'record:' "$tmp/dashboard-rules.yml") dashboard queries"
  else
    fail "a dashboard query is not valid PromQL (the record name is dashboard:<file>_<panel>:query<N>): $out"
  fi
fi

# ---- 5. RabbitMQ files -------------------------------------------------------------------------
grep -q 'rabbitmq_prometheus' docker/rabbitmq/enabled_plugins && grep -q 'rabbitmq_management' docker/rabbitmq/enabled_plugins \
  || fail "docker/rabbitmq/enabled_plugins must enable rabbitmq_management and rabbitmq_prometheus"
grep -Eq '\{dead_letter_worker_consumer_prefetch, *512\}' docker/rabbitmq/advanced.config \
  || fail "docker/rabbitmq/advanced.config must set dead_letter_worker_consumer_prefetch to 512"
grep -Eq '\{classic_queue_default_version, *2\}' docker/rabbitmq/advanced.config \
  || fail "docker/rabbitmq/advanced.config must set classic_queue_default_version to 2"
if command -v erl >/dev/null 2>&1; then
  if out="$(erl -noshell -eval '
      Check = fun(F) -> case file:consult(F) of {ok, [_]} -> ok; Other -> io:format("~s: ~p~n", [F, Other]), error end end,
      R = [Check(F) || F <- ["docker/rabbitmq/advanced.config", "docker/rabbitmq/enabled_plugins"]],
      halt(case lists:all(fun(X) -> X =:= ok end, R) of true -> 0; false -> 1 end).' 2>&1)"; then
    ok "erl reads docker/rabbitmq/advanced.config and enabled_plugins as one Erlang term each"
  else
    fail "docker/rabbitmq files are not valid Erlang terms: $out"
  fi
else
  echo "note: erl is not installed; the RabbitMQ files were checked by pattern only"
fi

if [ "$problems" -gt 0 ]; then
  echo "docker/ validation FAILED: $problems check group(s) reported problems (see FAIL lines above)" >&2
  exit 1
fi
echo "docker/ validation passed"
