import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * The nginx configuration: nginx/nginx.conf.template is the only source. The local
 * stack renders it for the replicas it starts, and nginx/nginx.conf (docker compose) is its
 * rendering with --compose. Both must pass the real `nginx -t`, and the committed file must be
 * exactly what the template renders to.
 */
const root = path.resolve(__dirname, '..', '..');
const render = path.join(root, 'nginx', 'render.sh');
const template = readFileSync(path.join(root, 'nginx', 'nginx.conf.template'), 'utf8');

function nginxBinary(): string {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('nginx is not installed: scripts/stack.sh up installs it (apt-get install nginx)');
}

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: `${r.stderr}${r.error ? String(r.error) : ''}` };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pc-nginx-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Renders into its own prefix directory and runs `nginx -t -p <prefix> -c <file>` on it. */
function renderAndTest(name: string, renderArgs: string[]) {
  const prefix = path.join(dir, name);
  for (const sub of ['run', 'logs', 'tmp']) mkdirSync(path.join(prefix, sub), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  const rendered = run('bash', [render, ...renderArgs, '-o', conf]);
  expect(rendered).toMatchObject({ status: 0, stderr: '' });
  const test = run(nginxBinary(), ['-t', '-p', `${prefix}/`, '-c', conf]);
  return { conf: readFileSync(conf, 'utf8'), test };
}

describe('nginx configuration', () => {
  it('renders for local replicas and passes nginx -t', () => {
    const prefix = path.join(dir, 'local');
    const { conf, test } = renderAndTest('local', [
      '--prefix', prefix, '--listen', '127.0.0.1:8080', '--worker-processes', '1',
      '--upstream', '127.0.0.1:3001', '--upstream', '127.0.0.1:3002', '--upstream', '127.0.0.1:3003',
      '--admin-listen', '127.0.0.1:8081', '--admin-upstream', '127.0.0.1:3301', '--admin-upstream', '127.0.0.1:3302', '--admin-upstream', '127.0.0.1:3303',
    ]);
    expect(test).toMatchObject({ status: 0, stderr: expect.stringContaining('test is successful') });
    expect(conf.match(/^\s*server 127\.0\.0\.1:300\d max_fails=\d+ fail_timeout=\d+s;$/gm)).toHaveLength(3);
    expect(conf).toContain(`pid ${prefix}/run/nginx.pid;`);
    expect(conf).toContain(`access_log ${prefix}/logs/access.log compensator_json;`);
    expect(conf).toContain(`client_body_temp_path ${prefix}/tmp/client_temp;`);
    expect(conf).not.toMatch(/\{\{[A-Z_]+\}\}/);
  });

  it('nginx/nginx.conf is exactly the template rendered for compose', () => {
    const rendered = run('bash', [render, '--compose']);
    expect(rendered.status).toBe(0);
    const committed = readFileSync(path.join(root, 'nginx', 'nginx.conf'), 'utf8');
    // On failure: run `nginx/render.sh --compose -o nginx/nginx.conf` after editing the template.
    expect(committed).toBe(rendered.stdout);
    expect(committed).toMatch(/^\s*server api:3000 max_fails=\d+ fail_timeout=\d+s;$/m);
    expect(committed).toMatch(/^\s*listen 8080;$/m);
    expect(committed).toMatch(/^error_log stderr warn;$/m);
    expect(committed).toMatch(/^\s*access_log \/dev\/stdout compensator_json;$/m);
  });

  it('the compose rendering passes nginx -t too (with a resolvable upstream and private paths)', () => {
    // api:3000 only resolves inside compose, and /dev/stdout cannot be opened when stdout is a
    // socket (as under jest); /tmp is shared. Everything else is the compose rendering.
    const prefix = path.join(dir, 'compose');
    const { test } = renderAndTest('compose', [
      '--compose', '--upstream', '127.0.0.1:3000', '--admin-upstream', '127.0.0.1:3100', '--pid', `${prefix}/run/nginx.pid`,
      '--temp-dir', `${prefix}/tmp`, '--access-log', `${prefix}/logs/access.log`,
    ]);
    expect(test).toMatchObject({ status: 0, stderr: expect.stringContaining('test is successful') });
  });

  it('has the production settings a deployment needs', () => {
    const bodyLimit = JSON.parse(readFileSync(path.join(root, 'config', 'default.json'), 'utf8')).http.bodyLimitBytes as number;
    expect(template).toContain(`client_max_body_size    ${bodyLimit / 1024}k;`);
    expect(template).toMatch(/upstream compensator_api \{/);
    expect(template).toMatch(/^\s*keepalive \d+;$/m);
    expect(template).toMatch(/^\s*server \{\{UPSTREAM\}\} max_fails=\d+ fail_timeout=\d+s;$/m);
    expect(template).toMatch(/proxy_next_upstream error timeout http_502 http_503 non_idempotent;/);
    expect(template).toMatch(/idempotent on \(merchantId, orderId\)/);
    for (const header of ['Host $host', 'X-Real-IP $remote_addr', 'X-Forwarded-For $proxy_add_x_forwarded_for', 'X-Forwarded-Proto $scheme', 'X-Request-Id $req_id']) {
      expect(template).toContain(`proxy_set_header ${header};`);
    }
    expect(template).toContain('add_header X-Upstream-Addr $upstream_addr always;');
    expect(template).toContain('add_header X-Upstream-Status $upstream_status always;');
    expect(template).toMatch(/map \$http_x_request_id \$req_id \{\s*default\s+\$request_id;/);
    expect(template).toMatch(/log_format compensator_json escape=json/);
    for (const timeout of ['proxy_connect_timeout', 'proxy_read_timeout', 'proxy_send_timeout', 'client_body_timeout']) {
      expect(template).toMatch(new RegExp(`^\\s*${timeout}\\s+\\d+s;$`, 'm'));
    }
  });

  it('forwards only payments, callbacks and health on the public listener, and the rest on a loopback admin listener', () => {
    const [publicServer, adminServer] = template.split(/\n    server \{\n/).slice(1);
    expect(publicServer).toMatch(/listen \{\{LISTEN\}\};/);
    for (const route of ['location = /v1/payments {', 'location ~ ^/v1/payments/[^/]+/callback$ {', 'location /v1/payments/ {', 'location = /healthz {', 'location = /readyz {']) expect(publicServer).toContain(route);
    expect(publicServer).toMatch(/location \/ \{\s*return 404/);
    expect(publicServer).not.toMatch(/location[^\n]*\/(v1\/admin|ops|metrics)/);
    expect(publicServer).not.toContain('X-Upstream-Addr');
    expect(publicServer).toContain('limit_req zone=creates');
    expect(publicServer).toContain('limit_req zone=callbacks');
    expect(adminServer).toMatch(/listen \{\{ADMIN_LISTEN\}\};/);
    expect(adminServer).toContain('proxy_pass http://compensator_admin;');
    const compose = readFileSync(path.join(root, 'nginx', 'nginx.conf'), 'utf8');
    expect(compose).toMatch(/^\s*listen 8081;$/m);
    expect(compose).toMatch(/^\s*server api:3100 max_fails=\d+ fail_timeout=\d+s;$/m);
  });

  it('render.sh refuses values nginx would misread', () => {
    const bad = run('bash', [render, '--prefix', dir, '--listen', '127.0.0.1:8080; evil', '--upstream', '127.0.0.1:3001']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/LISTEN/);
    const noUpstream = run('bash', [render, '--prefix', dir, '--listen', '127.0.0.1:8080']);
    expect(noUpstream.status).not.toBe(0);
  });
});
