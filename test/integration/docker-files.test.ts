import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * docker/ without a Docker engine: scripts/validate-docker.sh does the strict validation
 * (Debian's docker-compose, promtool, the Dockerfile against package.json); this file checks
 * the deployment's shape on top of it.
 */
const root = path.resolve(__dirname, '..', '..');
const file = (p: string) => path.join(root, p);

type Service = Record<string, any>;

/**
 * YAML through PyYAML: the project has no YAML parser of its own (`yaml` is not installed, and
 * js-yaml is only a transitive dependency of jest's coverage tooling), while python3-yaml comes
 * with Debian's docker-compose, which the validation script installs. PyYAML resolves anchors
 * and `<<` merge keys the way Compose does.
 */
function readYaml(p: string): any {
  const json = execFileSync('python3', ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', p], { encoding: 'utf8' });
  return JSON.parse(json);
}

let validation: { status: number | null; output: string };
let services: Record<string, Service>;

beforeAll(() => {
  // On a fresh machine the script first installs docker-compose and promtool with apt-get.
  const run = spawnSync('bash', [file('scripts/validate-docker.sh')], { cwd: root, encoding: 'utf8', timeout: 9 * 60 * 1000 });
  validation = { status: run.status, output: `${run.stdout}${run.stderr}${run.error ? String(run.error) : ''}` };
  services = readYaml(file('docker/compose.yml')).services;
}, 10 * 60 * 1000);

describe('the Docker deployment files', () => {
  it('pass the engine-free validation script', () => {
    // Compared as an object so that a failure shows the script's output.
    expect(validation).toEqual({ status: 0, output: expect.stringContaining('docker/ validation passed') });
  });

  it('cap the V8 heap of the service image, set after npm ci so that the install is not capped', () => {
    const lines = readFileSync(file('docker/Dockerfile'), 'utf8').split('\n');
    const cap = lines.findIndex((l) => /^ENV NODE_OPTIONS=--max-old-space-size=\d+$/.test(l));
    const lastInstall = lines.map((l, i) => (/^RUN npm ci/.test(l) ? i : -1)).reduce((a, b) => Math.max(a, b));
    expect(cap).toBeGreaterThan(lastInstall);
  });

  it('run three api replicas and two workers', () => {
    expect(services.api?.deploy?.replicas).toBe(3);
    expect(services.worker?.deploy?.replicas).toBe(2);
    expect(services.api?.environment?.ROLE).toBe('api');
    expect(services.worker?.environment?.ROLE).toBe('worker');
  });

  it('give every long-running service with something to call a healthcheck', () => {
    for (const name of ['rabbitmq', 'mysql', 'api', 'simulator', 'nginx', 'prometheus', 'grafana']) {
      expect({ name, test: services[name]?.healthcheck?.test }).toEqual({ name, test: expect.any(Array) });
    }
    expect(services.rabbitmq?.healthcheck.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
    expect(services.mysql?.healthcheck.test.slice(0, 3)).toEqual(['CMD', 'mysqladmin', 'ping']);
    expect(services.api?.healthcheck.test.join(' ')).toContain('/healthz');
    // A worker serves /healthz on PORT too, so it keeps the image's check; the one-shot migration
    // serves no HTTP, so its check is off.
    expect(services.worker?.healthcheck).toBeUndefined();
    expect(services.worker?.environment?.ROLE).toBe('worker');
    expect(services.migrate?.healthcheck).toEqual({ disable: true });
    expect(readFileSync(file('docker/Dockerfile'), 'utf8')).toMatch(/^HEALTHCHECK [^\n]*(\\\n[^\n]*)*\/healthz/m);
  });

  it('start api and workers only after the migration succeeded and the broker is healthy', () => {
    for (const name of ['api', 'worker']) {
      expect(services[name]?.depends_on).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        rabbitmq: { condition: 'service_healthy' },
        mysql: { condition: 'service_healthy' },
      });
    }
    expect(services.migrate?.command).toEqual(['node', 'dist/db/migrate.js']);
    expect(services.migrate?.restart).toBe('no');
    expect(services.migrate?.depends_on).toEqual({ mysql: { condition: 'service_healthy' } });
  });

  it('mount nginx/nginx.conf read-only as the nginx configuration', () => {
    expect(services.nginx?.image).toMatch(/^nginx:1\.27-alpine$/);
    expect(services.nginx?.volumes).toContain('../nginx/nginx.conf:/etc/nginx/nginx.conf:ro');
    expect(services.nginx?.ports).toContain('8080:8080');
    expect(services.nginx?.depends_on).toEqual({ api: { condition: 'service_healthy' } });
  });

  it('take the production secrets only from required environment variables', () => {
    for (const name of ['api', 'worker', 'migrate']) {
      const env = services[name]?.environment ?? {};
      expect(env.NODE_ENV).toBe('production');
      for (const variable of ['CHANNEL_SECRET_WECHAT', 'CHANNEL_SECRET_ALIPAY', 'MERCHANT_SECRETS_KEY', 'ADMIN_TOKEN']) {
        expect(env[variable]).toMatch(new RegExp(`^\\$\\{${variable}:\\?`));
      }
      expect(env.DATABASE_URL).toMatch(/^mysql:\/\/[^@]+@mysql:3306\//);
      expect(env.AMQP_URL).toMatch(/^amqp:\/\/[^@]+@rabbitmq:5672$/);
    }
  });

  it('chart only compensator_ metrics that src/shared/metrics.ts defines', () => {
    const source = readFileSync(file('src/shared/metrics.ts'), 'utf8');
    const defined = new Map<string, string>();
    for (const m of source.matchAll(/new client\.(\w+)\(\{\s*name:\s*'([^']+)'/g)) defined.set(m[2] as string, m[1] as string);
    expect(defined.size).toBeGreaterThan(5);
    const allowed = new Set<string>();
    for (const [name, type] of defined) {
      allowed.add(name);
      if (type === 'Histogram') for (const suffix of ['_bucket', '_sum', '_count']) allowed.add(name + suffix);
      if (type === 'Summary') for (const suffix of ['_sum', '_count']) allowed.add(name + suffix);
    }

    const dashboard = JSON.parse(readFileSync(file('docker/grafana/dashboards/compensator.json'), 'utf8'));
    const exprs: string[] = [];
    const visit = (panels: any[]) => {
      for (const panel of panels ?? []) {
        for (const target of panel.targets ?? []) if (target.expr) exprs.push(target.expr);
        visit(panel.panels);
      }
    };
    visit(dashboard.panels);
    const queried = new Set(exprs.flatMap((e) => e.match(/\bcompensator_[a-zA-Z0-9_]+/g) ?? []));

    expect(queried.size).toBeGreaterThan(8);
    expect([...queried].filter((name) => !allowed.has(name))).toEqual([]);
    // The headline SLO and the broker's queue depth are on it.
    expect(exprs.join('\n')).toContain('histogram_quantile(0.99, sum by (le) (rate(compensator_timer_lateness_seconds_bucket');
    expect(exprs.join('\n')).toContain('rabbitmq_queue_messages_ready');
  });
});
