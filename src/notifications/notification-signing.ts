import { Webhook } from 'standardwebhooks';

/**
 * The Standard Webhooks headers of one delivery (README.md, "HTTP API"): `webhook-signature` holds a
 * `v1,<base64>` signature per live secret of the merchant, space-separated, so during a rotation
 * a merchant verifies with either its old or its new secret.
 */
export function webhookHeaders(secrets: string[], eventId: string, at: Date, body: string): Record<string, string> {
  if (secrets.length === 0) throw new Error('no webhook secret to sign with');
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(eventId, at, body)).join(' '),
  };
}
