import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config-loader';
import { createDatabase } from '../infra/database';
import { AppError } from '../shared/errors';
import { parseOrThrow } from '../shared/validation';
import { createSecretBox } from './merchant-credentials';
import { createMerchantsRepository } from './merchants-repository';
import { merchantParams, platformKeySchema, registerMerchantSchema } from './merchants-schemas';
import { createMerchantsService } from './merchants-service';

const USAGE = `npm run merchants -- <command>   (DATABASE_URL, MERCHANT_SECRETS_KEY and NODE_ENV as for the service)
  add --id m_1 --name "Shop One" --notify-url https://shop.example/notify
                                    registers a merchant; prints its API key and webhook secret (shown once)
  list                              merchants with their key ids, never a secret
  rotate-key m_1 [--revoke-old]     a new API key; --revoke-old revokes the merchant's other keys at once
  revoke-key m_1 key_...            revokes one of the merchant's keys at once
  add-platform-key --merchants m_1,m_2 [--amqp-user checkout]
                                    a platform key for those merchants ("*" for all); with --amqp-user, the
                                    payment intents that RabbitMQ user publishes act with it; prints the key once
  revoke-platform-key key_...       revokes a platform key at once
  rotate-webhook-secret m_1         a new webhook secret; the old one still signs for the rotation overlap
`;

/** `npm run merchants`: the merchant admin API for operators without the HTTP admin. Prints JSON. */
async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { id: { type: 'string' }, name: { type: 'string' }, 'notify-url': { type: 'string' }, 'revoke-old': { type: 'boolean' }, merchants: { type: 'string' }, 'amqp-user': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return;
  }
  // The development key against a real database would seal secrets that the service can
  // never open (and that anyone could): refuse rather than hand out an unusable secret.
  if (process.env.DATABASE_URL && !process.env.MERCHANT_SECRETS_KEY) {
    throw new ConfigError('DATABASE_URL is set but MERCHANT_SECRETS_KEY is not: set the key the service runs with');
  }
  const { config } = loadConfig();
  const db = createDatabase({ config, poolMax: 1 });
  const merchants = createMerchantsService({
    repository: createMerchantsRepository({ db }),
    secretBox: createSecretBox(Buffer.from(config.merchantSecretsKey, 'base64')),
    rotationOverlapSeconds: config.notifications.secretRotationOverlapSeconds,
  });
  const merchantArg = () => parseOrThrow(merchantParams, { merchantId: rest[0] }).merchantId;
  const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  try {
    switch (command) {
      case 'add':
        print(await merchants.register(parseOrThrow(registerMerchantSchema, { merchantId: values.id, name: values.name, notifyUrl: values['notify-url'] })));
        break;
      case 'list':
        print({ merchants: await merchants.list() });
        break;
      case 'rotate-key': {
        const merchantId = merchantArg();
        const key = await merchants.addApiKey(merchantId);
        const revoked: string[] = [];
        if (values['revoke-old']) {
          for (const old of (await merchants.get(merchantId)).apiKeys) {
            if (old.id !== key.id && old.revokedAt === null) {
              await merchants.revokeApiKey(merchantId, old.id);
              revoked.push(old.id);
            }
          }
        }
        print({ merchantId, apiKey: key, revoked });
        break;
      }
      case 'revoke-key': {
        const merchantId = merchantArg();
        await merchants.revokeApiKey(merchantId, String(rest[1] ?? ''));
        print({ merchantId, revoked: [rest[1]] });
        break;
      }
      case 'add-platform-key': {
        const request = parseOrThrow(platformKeySchema, { merchants: (values.merchants ?? '').split(',').filter(Boolean), amqpUser: values['amqp-user'] });
        print({ ...(await merchants.createPlatformKey(request.merchants, request.amqpUser)), merchants: request.merchants, amqpUser: request.amqpUser ?? null });
        break;
      }
      case 'revoke-platform-key': {
        await merchants.revokePlatformKey(String(rest[0] ?? ''));
        print({ revoked: [rest[0]] });
        break;
      }
      case 'rotate-webhook-secret': {
        const merchantId = merchantArg();
        print({ merchantId, ...(await merchants.rotateWebhookSecret(merchantId)), oldSecretValidForSeconds: config.notifications.secretRotationOverlapSeconds });
        break;
      }
      default:
        throw new AppError('VALIDATION_FAILED', `unknown command "${command}"\n${USAGE}`, 400);
    }
  } finally {
    await db.destroy();
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof AppError || err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (err as Error).message : String((err as Error).stack ?? err);
  process.stderr.write(`merchants: ${message}\n`);
  process.exit(err instanceof AppError && err.httpStatus === 404 ? 3 : 2);
});
