import { z } from 'zod';
import type { ErrorCode } from '../shared/errors';
import { API_OPERATIONS, type ApiOperation, type ApiResponse } from './openapi-operations';
import { ERROR_CODES, ERROR_STATUS, errorSchema, notificationEventSchema, responseSchemas } from './openapi-schemas';

type JsonSchema = Record<string, unknown>;

const ERROR_DESCRIPTIONS: Record<ErrorCode, string> = {
  VALIDATION_FAILED: 'The request is invalid: a field, a parameter, or a body that is not JSON; `details` names each problem',
  UNAUTHORIZED: 'No credentials, or unknown, revoked or badly signed ones',
  FORBIDDEN: 'The key may not act for that merchant',
  NOT_FOUND: 'No such resource, or one of another merchant',
  CONFLICT: 'The request conflicts with the current state',
  PAYLOAD_TOO_LARGE: 'The body is larger than 16 KiB',
  UNSUPPORTED_MEDIA_TYPE: 'A body that is not application/json',
  RATE_LIMITED: 'Too many requests with this key (or from this address, at nginx)',
  INTERNAL: 'An internal error; the answer never carries internal details',
  UNAVAILABLE: 'A dependency is unavailable; retry shortly',
};

/** How z.toJSONSchema renders for the document: no 400-character date-time regex next to its format. */
const RENDER = {
  target: 'draft-2020-12',
  override: (ctx: { jsonSchema: JsonSchema }) => {
    if (ctx.jsonSchema.format === 'date-time') delete ctx.jsonSchema.pattern;
  },
} as const;

/** One schema, inline (OpenAPI 3.1 takes JSON Schema 2020-12 as it is, without $schema). */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...out } = z.toJSONSchema(schema, { ...RENDER, io }) as JsonSchema;
  return out;
}

/** A registry's schemas as components, referring to each other by #/components/schemas/<id>. */
function componentsOf(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(registry, { ...RENDER, io, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => {
    const { $schema: _dialect, $id: _id, ...rest } = schema as JsonSchema;
    return [id, rest];
  }));
}

/** A zod object's properties as OpenAPI parameters. */
function parametersOf(schema: z.ZodObject, where: 'path' | 'query'): JsonSchema[] {
  const json = jsonSchemaOf(schema, 'input') as { properties: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === 'path' || (json.required ?? []).includes(name),
      ...(description === undefined ? {} : { description }),
      schema: rest,
    };
  });
}

/** express's /v1/payments/:id to OpenAPI's /v1/payments/{id}. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function responseOf(response: ApiResponse): JsonSchema {
  const content: Record<string, JsonSchema> = {};
  if (response.schema) {
    const id = responseSchemas.get(response.schema)?.id;
    content['application/json'] = { schema: id === undefined ? jsonSchemaOf(response.schema, 'output') : { $ref: `#/components/schemas/${id}` } };
  }
  if (response.text) content[response.text] = { schema: { type: 'string' } };
  return { description: response.description, ...(Object.keys(content).length ? { content } : {}) };
}

function requestBodyOf(op: ApiOperation): JsonSchema | undefined {
  if (op.body) return { required: op.body.required, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body.id}` } } } };
  if (op.rawBody) return { required: true, description: op.rawBody.description, content: Object.fromEntries(op.rawBody.contentTypes.map((type) => [type, {}])) };
  return undefined;
}

function operationOf(op: ApiOperation): JsonSchema {
  const parameters = [
    ...(op.params ? parametersOf(op.params, 'path') : []),
    ...(op.query ? parametersOf(op.query, 'query') : []),
    ...(op.headers ?? []).map((h) => ({ name: h.name, in: 'header', required: true, description: h.description, schema: { type: 'string' } })),
  ];
  const responses: Record<string, JsonSchema> = {};
  for (const [status, response] of Object.entries(op.responses)) responses[status] = responseOf(response);
  for (const code of [...op.errors].sort((a, b) => ERROR_STATUS[a] - ERROR_STATUS[b])) {
    const status = String(ERROR_STATUS[code]);
    if (responses[status]) throw new Error(`${op.method.toUpperCase()} ${op.path} describes ${status} twice`);
    responses[status] = { $ref: `#/components/responses/${code}` };
  }
  const requestBody = requestBodyOf(op);
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    security: op.auth === 'none' ? [] : [{ [op.auth]: [] }],
    ...(parameters.length ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses,
    'x-listener': op.listener,
    ...(op.perChannel ? { 'x-channel-types': op.perChannel } : {}),
  };
}

/**
 * The OpenAPI 3.1 document of the API (README.md, "HTTP API"), built from the zod schemas that
 * validate the requests and those of the answers (openapi-schemas.ts), over the table of
 * routes in openapi-operations.ts. Served at GET /openapi.json; `npm run build` writes it to
 * docs/openapi.json.
 */
export function buildOpenApiDocument(operations: ApiOperation[] = API_OPERATIONS): JsonSchema {
  const requestSchemas = z.registry<{ id: string }>();
  for (const op of operations) {
    if (op.body && !requestSchemas.has(op.body.schema)) requestSchemas.add(op.body.schema, { id: op.body.id });
  }
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of operations) {
    const path = (paths[openApiPath(op.path)] ??= {});
    if (path[op.method]) throw new Error(`${op.method.toUpperCase()} ${op.path} is described twice`);
    path[op.method] = operationOf(op);
  }
  const errorResponses = Object.fromEntries(
    ERROR_CODES.map((code) => [
      code,
      {
        description: `${code}: ${ERROR_DESCRIPTIONS[code]}`,
        ...(code === 'RATE_LIMITED' ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } } } : {}),
        content: { 'application/json': { schema: { $ref: `#/components/schemas/${responseSchemas.get(errorSchema)?.id}` } } },
      },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'Payment Compensator',
      version: '1',
      description:
        'Per-payment timers that settle stuck payments, and the merchant API around them. All bodies are JSON (at most 16 KiB); every error has the Error shape. ' +
        'With ADMIN_PORT set, the operations marked `x-listener: admin` are served only on ADMIN_HOST:ADMIN_PORT and answer 404 on PORT; unset, PORT serves everything. ' +
        'A request may carry X-Request-Id (1 to 64 of [A-Za-z0-9._:-]); every answer echoes the id it was logged under.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'payments', description: "With a merchant's API key (Authorization: Bearer sk_...), or a platform key for that merchant" },
      { name: 'channels', description: 'Signed by the channel' },
      { name: 'admin', description: 'With Authorization: Bearer <ADMIN_TOKEN>; on the admin listener when ADMIN_PORT is set' },
      { name: 'ops', description: 'Health, readiness, metrics, the ops page and this document' },
      { name: 'notifications', description: 'What the service sends to merchants' },
    ],
    paths,
    webhooks: {
      paymentNotification: {
        post: {
          operationId: 'paymentNotification',
          tags: ['notifications'],
          summary: 'A payment reached PAID, FAILED, CLOSED or PAID_AFTER_CLOSE',
          description:
            "POSTed to the payment's notifyUrl with the Standard Webhooks headers, signed with the merchant's webhook secret: " +
            'v1,<base64 HMAC-SHA256(the bytes of the base64 after whsec_, "<webhook-id>.<webhook-timestamp>.<body>")>; during a rotation the header holds both signatures, separated by a space. ' +
            'A 2xx means delivered; anything else is retried on the notification schedule, then parked.',
          parameters: [
            { name: 'webhook-id', in: 'header', required: true, description: 'The eventId, the same on every attempt', schema: { type: 'string' } },
            { name: 'webhook-timestamp', in: 'header', required: true, description: 'Unix seconds of this attempt', schema: { type: 'string' } },
            { name: 'webhook-signature', in: 'header', required: true, description: 'One or more space-separated v1,<base64> signatures', schema: { type: 'string' } },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${responseSchemas.get(notificationEventSchema)?.id}` } } } },
          responses: { '2XX': { description: 'Delivered' } },
        },
      },
    },
    components: {
      schemas: { ...componentsOf(responseSchemas, 'output'), ...componentsOf(requestSchemas, 'input') },
      responses: errorResponses,
      securitySchemes: {
        merchantKey: { type: 'http', scheme: 'bearer', bearerFormat: 'sk_...', description: "A merchant's API key, or a platform key" },
        adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
      },
    },
  };
}
