import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { createApp } from '../../src/app';
import type { BacklogReader } from '../../src/ops/backlog';
import type { readPaymentStats } from '../../src/ops/payment-stats';
import type { MerchantsService } from '../../src/merchants/merchants-service';
import { buildOpenApiDocument, openApiPath } from '../../src/openapi/openapi-document';
import { renderOpenApiDocument } from '../../src/openapi/openapi-main';
import { API_OPERATIONS } from '../../src/openapi/openapi-operations';
import * as schemas from '../../src/openapi/openapi-schemas';
import { ERROR_CODES, ERROR_STATUS } from '../../src/openapi/openapi-schemas';
import type { ParkingService } from '../../src/parking/parking-service';
import type { PaymentResource } from '../../src/payments/payment-resource';
import type { TimelineEvent } from '../../src/payments/payment-timeline';
import { testConfig } from '../helpers/test-app';

const root = path.resolve(__dirname, '..', '..');
const doc = buildOpenApiDocument() as any;

/*
 * The answer schemas describe what the code answers (tsc checks this file): each one's output has
 * the keys of the type the code builds its answer with, and one is assignable to the other (the
 * schema is the narrower where the code types a status as a string, the wider where an absent
 * field is `undefined` in the code). The integration tests parse real answers with them.
 */
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Describes<S extends z.ZodType, T> = SameKeys<z.output<S>, T> extends true ? ([z.output<S>] extends [T] ? true : [T] extends [z.output<S>] ? true : false) : false;
const described: true[] = [
  true satisfies Describes<typeof schemas.paymentSchema, PaymentResource>,
  true satisfies Describes<typeof schemas.paymentEventSchema, TimelineEvent>,
  true satisfies Describes<typeof schemas.registeredMerchantSchema, Awaited<ReturnType<MerchantsService['register']>>>,
  true satisfies Describes<typeof schemas.merchantSchema, Awaited<ReturnType<MerchantsService['get']>>>,
  true satisfies Describes<typeof schemas.issuedKeySchema, Awaited<ReturnType<MerchantsService['addApiKey']>>>,
  true satisfies Describes<typeof schemas.webhookSecretSchema, Awaited<ReturnType<MerchantsService['rotateWebhookSecret']>>>,
  true satisfies Describes<typeof schemas.platformKeyListSchema, { platformKeys: Awaited<ReturnType<MerchantsService['listPlatformKeys']>> }>,
  true satisfies Describes<typeof schemas.paymentStatsSchema, Awaited<ReturnType<typeof readPaymentStats>>>,
  true satisfies Describes<typeof schemas.backlogSchema, Awaited<ReturnType<BacklogReader['read']>>>,
  true satisfies Describes<typeof schemas.parkedItemsSchema, Awaited<ReturnType<ParkingService['list']>>>,
];

/*
 * A channel of each real kind, so that their native notification routes are mounted too. Their
 * credentials come from the environment only, as in production (CHANNEL_<NAME>_*).
 */
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
Object.assign(process.env, {
  CHANNEL_WXPAY_PRIVATE_KEY: rsa.privateKey,
  CHANNEL_WXPAY_API_V3_KEY: 'k'.repeat(32),
  CHANNEL_WXPAY_PLATFORM_PUBLIC_KEY: rsa.publicKey,
  CHANNEL_ALI_PRIVATE_KEY: rsa.privateKey,
  CHANNEL_ALI_ALIPAY_PUBLIC_KEY: rsa.publicKey,
  CHANNEL_CARDS_SECRET_KEY: 'sk_test_0123456789abcdef',
  CHANNEL_CARDS_WEBHOOK_SECRET: `whsec_${'a'.repeat(32)}`,
});
const local = 'http://127.0.0.1:9';
const realChannels = {
  channels: {
    wxpay: { timeoutSeconds: 900, adapter: { type: 'wechatpay', baseUrl: local, mchid: '1900000001', merchantSerialNo: '0123456789ABCDEF', platformSerial: 'PUB_KEY_ID_0' } },
    ali: { timeoutSeconds: 900, adapter: { type: 'alipay', gateway: `${local}/gateway.do`, appId: '2021000000000001' } },
    cards: { timeoutSeconds: 900, adapter: { type: 'stripe', baseUrl: local } },
  },
};

/** Every `METHOD path` the app's routers declare, nested routers included (Express 5: app.router.stack). */
function routesOf(app: { router: { stack: unknown[] } }): string[] {
  const out: string[] = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        if (typeof layer.route.path !== 'string') throw new Error(`a route path that is not a string: ${String(layer.route.path)}`);
        for (const [method, on] of Object.entries(layer.route.methods)) if (on) out.push(`${method.toUpperCase()} ${layer.route.path}`);
      } else if (Array.isArray(layer.handle?.stack)) {
        // Every router is mounted at / and declares full paths; one mounted elsewhere needs its prefix here.
        if (!layer.slash) throw new Error(`router ${layer.name} is mounted below /: prefix its routes in this walk`);
        walk(layer.handle.stack);
      }
    }
  };
  walk(app.router.stack);
  // A channel's native route is one operation whatever the channel's name.
  return [...new Set(out.map((route) => route.replace(/^(POST \/v1\/channels\/)[^/]+\//, '$1:channel/')))].sort();
}

const operationsOn = (listeners: string[]) =>
  API_OPERATIONS.filter((op) => listeners.includes(op.listener))
    .map((op) => `${op.method.toUpperCase()} ${op.path}`)
    .sort();

describe('the OpenAPI document', () => {
  it('checks every answer schema against the type the code answers with', () => {
    expect(described.every(Boolean)).toBe(true);
  });

  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', () => {
    // The validator is an ES module; jest runs CommonJS, so it runs in a node of its own.
    const script = `
      import { Validator } from '@seriousme/openapi-schema-validator';
      import { readFileSync } from 'node:fs';
      const validator = new Validator();
      const result = await validator.validate(JSON.parse(readFileSync(0, 'utf8')));
      console.log(JSON.stringify({ version: validator.version, ...result }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, input: JSON.stringify(doc), encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ version: '3.1', valid: true });
  });

  it('describes every route of the app, and every route it describes exists', async () => {
    const app = createApp(testConfig(realChannels));
    try {
      expect(routesOf(app.http as never)).toEqual(operationsOn(['public', 'admin', 'both']));
    } finally {
      await app.stop();
    }
  });

  it('with ADMIN_PORT set, the public listener serves exactly the operations not marked x-listener: admin', async () => {
    const app = createApp(testConfig({ http: { adminPort: 0 }, ...realChannels }));
    try {
      expect(routesOf(app.http as never)).toEqual(operationsOn(['public', 'both']));
    } finally {
      await app.stop();
    }
  });

  it('has one operation per method and path, each with its operationId', () => {
    const operations = Object.entries(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => `${m} ${p} ${op.operationId}`));
    expect(operations.sort()).toEqual(API_OPERATIONS.map((op) => `${op.method} ${openApiPath(op.path)} ${op.operationId}`).sort());
    expect(new Set(API_OPERATIONS.map((op) => op.operationId)).size).toBe(API_OPERATIONS.length);
  });

  it('lists every error code of README.md, "HTTP API", with its status, and every operation refers only to those', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## HTTP API'), readme.indexOf('### Create a payment'));
    const documented = Object.fromEntries([...section.matchAll(/`([A-Z_]+)` (\d{3})/g)].map((m) => [m[1], Number(m[2])]));
    expect(documented).toEqual(ERROR_STATUS);
    expect(doc.components.schemas.ErrorCode.enum.sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) expect(doc.components.responses[code].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    for (const [p, methods] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>)) {
      for (const [m, op] of Object.entries(methods)) {
        for (const [status, response] of Object.entries(op.responses)) {
          // A channel's native route answers its failures the channel's way, described in place.
          if (Number(status) < 400 || (response.$ref === undefined && p.startsWith('/v1/channels/'))) continue;
          const code = response.$ref?.replace('#/components/responses/', '') as keyof typeof ERROR_STATUS;
          expect({ at: `${m} ${p} ${status}`, status: ERROR_STATUS[code] }).toEqual({ at: `${m} ${p} ${status}`, status: Number(status) });
        }
      }
    }
  });

  it('is committed as docs/openapi.json exactly as npm run build writes it', () => {
    const committed = readFileSync(path.join(root, 'docs', 'openapi.json'), 'utf8');
    expect(committed === renderOpenApiDocument() ? 'fresh' : 'docs/openapi.json is stale: npm run build writes it; commit it').toBe('fresh');
  });

  it("and the client's generated types are a fresh openapi-typescript generation from it", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pc-openapi-'));
    try {
      writeFileSync(path.join(dir, 'openapi.json'), renderOpenApiDocument());
      const cli = path.join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
      // As `npm --prefix clients/typescript run generate` does, from the client's folder.
      const run = spawnSync(process.execPath, [cli, path.join(dir, 'openapi.json'), '-o', path.join(dir, 'openapi.ts')], { cwd: path.join(root, 'clients', 'typescript'), encoding: 'utf8' });
      expect(run.status).toBe(0);
      const committed = readFileSync(path.join(root, 'clients', 'typescript', 'src', 'openapi.ts'), 'utf8');
      const fresh = readFileSync(path.join(dir, 'openapi.ts'), 'utf8');
      expect(committed === fresh ? 'fresh' : 'clients/typescript/src/openapi.ts is stale: npm run build && npm --prefix clients/typescript run generate; commit both').toBe('fresh');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
