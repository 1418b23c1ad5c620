import { callbackSchema, createPaymentSchema } from '../../src/payments/payments-schemas';
import { parseOrThrow } from '../../src/shared/validation';
import { ValidationError } from '../../src/shared/errors';

const validCreate = {
  merchantId: 'm_1',
  orderId: 'A-1001',
  amount: 1999,
  currency: 'CNY',
  channel: 'wechat',
  timeoutSeconds: 900,
  notifyUrl: 'http://merchant/notify',
};

/** Parses and returns the ValidationError, failing the test when the input is accepted. */
function rejectionOf(schema: Parameters<typeof parseOrThrow>[0], input: unknown): ValidationError {
  try {
    parseOrThrow(schema, input);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

function expectRejectedNaming(schema: Parameters<typeof parseOrThrow>[0], input: unknown, field: string, pattern?: RegExp) {
  const err = rejectionOf(schema, input);
  expect(err.code).toBe('VALIDATION_FAILED');
  expect(err.httpStatus).toBe(400);
  expect(err.message).toContain(field);
  if (pattern) expect(err.message).toMatch(pattern);
  expect(err.options.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field })]));
  for (const detail of err.options.details ?? []) expect(detail.message).toContain(detail.path || 'unknown field');
  return err;
}

describe('createPaymentSchema', () => {
  it('accepts the example request of README.md, "HTTP API" unchanged', () => {
    expect(parseOrThrow(createPaymentSchema, validCreate)).toEqual(validCreate);
  });

  it('accepts a request without the optional timeoutSeconds and notifyUrl', () => {
    const { timeoutSeconds: _t, notifyUrl: _n, ...required } = validCreate;
    expect(parseOrThrow(createPaymentSchema, required)).toEqual(required);
  });

  describe.each(['merchantId', 'orderId', 'channel'])('identifier %s', (field) => {
    it.each([
      ['one character', 'a'],
      ['64 characters', 'x'.repeat(64)],
      ['every allowed character class', 'Az09_.:-'],
    ])('accepts %s', (_name, value) => {
      expect(parseOrThrow(createPaymentSchema, { ...validCreate, [field]: value })).toEqual(expect.objectContaining({ [field]: value }));
    });

    it.each([
      ['an empty string', ''],
      ['65 characters', 'x'.repeat(65)],
      ['a space', 'a b'],
      ['a slash', 'a/b'],
      ['a non-ASCII letter', 'café'],
      ['an emoji', 'a\u{1F600}'],
      ['a newline', 'a\n'],
    ])(`rejects %s, naming ${field}`, (_name, value) => {
      expectRejectedNaming(createPaymentSchema, { ...validCreate, [field]: value }, field);
    });

    it(`rejects a number, naming ${field}`, () => {
      expectRejectedNaming(createPaymentSchema, { ...validCreate, [field]: 42 }, field, /string/);
    });

    // merchantId may be left out: with a merchant's key the merchant comes from the key.
    if (field !== 'merchantId') {
      it(`rejects a missing ${field}, naming it`, () => {
        const { [field as keyof typeof validCreate]: _omit, ...rest } = validCreate;
        expectRejectedNaming(createPaymentSchema, rest, field);
      });
    }
  });

  it('accepts a request without merchantId (the key names the merchant)', () => {
    const { merchantId: _m, ...rest } = validCreate;
    expect(parseOrThrow(createPaymentSchema, rest).merchantId).toBeUndefined();
  });

  describe('amount', () => {
    it.each([1, 1999, 1e12])('accepts %d', (amount) => {
      expect(parseOrThrow(createPaymentSchema, { ...validCreate, amount }).amount).toBe(amount);
    });

    it.each([
      ['0', 0],
      ['a negative number', -1],
      ['a fraction', 19.99],
      ['10^12 + 1', 1e12 + 1],
      ['a numeric string', '1999'],
      ['null', null],
      ['a boolean', true],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
    ])('rejects %s, naming amount', (_name, amount) => {
      expectRejectedNaming(createPaymentSchema, { ...validCreate, amount }, 'amount', /amount must be/);
    });

    it('rejects a missing amount as "amount must be a positive integer"', () => {
      const { amount: _a, ...rest } = validCreate;
      expect(rejectionOf(createPaymentSchema, rest).message).toBe('amount must be a positive integer');
    });
  });

  describe('currency', () => {
    it.each(['CNY', 'USD', 'EUR'])('accepts %s', (currency) => {
      expect(parseOrThrow(createPaymentSchema, { ...validCreate, currency }).currency).toBe(currency);
    });

    it.each([
      ['lower case', 'cny'],
      ['mixed case', 'Cny'],
      ['two letters', 'CN'],
      ['four letters', 'CNYY'],
      ['digits', '156'],
      ['an empty string', ''],
      ['a number', 156],
      ['null', null],
    ])('rejects %s, naming currency', (_name, currency) => {
      expectRejectedNaming(createPaymentSchema, { ...validCreate, currency }, 'currency');
    });

    it('rejects a missing currency, naming it', () => {
      const { currency: _c, ...rest } = validCreate;
      expectRejectedNaming(createPaymentSchema, rest, 'currency');
    });
  });

  describe('timeoutSeconds', () => {
    it.each([1, 900, 2_592_000])('accepts %d', (timeoutSeconds) => {
      expect(parseOrThrow(createPaymentSchema, { ...validCreate, timeoutSeconds }).timeoutSeconds).toBe(timeoutSeconds);
    });

    it.each([
      ['0', 0, /from 1 to 2592000/],
      ['a negative number', -5, /from 1 to 2592000/],
      ['30 days + 1 s', 2_592_001, /from 1 to 2592000/],
      ['a fraction', 1.5, /integer/],
      ['a numeric string', '900', /integer/],
      ['null', null, /integer/],
    ])('rejects %s, naming timeoutSeconds', (_name, timeoutSeconds, pattern) => {
      expectRejectedNaming(createPaymentSchema, { ...validCreate, timeoutSeconds }, 'timeoutSeconds', pattern);
    });
  });

  describe('notifyUrl', () => {
    it.each(['http://merchant/notify', 'https://merchant.example:8443/hooks/pay?x=1'])('accepts %s', (notifyUrl) => {
      expect(parseOrThrow(createPaymentSchema, { ...validCreate, notifyUrl }).notifyUrl).toBe(notifyUrl);
    });

    it.each([
      ['ftp', 'ftp://merchant/notify'],
      ['javascript', 'javascript:alert(1)'],
      ['file', 'file:///etc/passwd'],
      ['not a url', 'merchant/notify'],
      ['an empty string', ''],
      ['longer than 2048 characters', `https://merchant/${'a'.repeat(2048)}`],
      ['a number', 80],
    ])('rejects %s, naming notifyUrl', (_name, notifyUrl) => {
      expectRejectedNaming(createPaymentSchema, { ...validCreate, notifyUrl }, 'notifyUrl');
    });
  });

  describe('the body as a whole', () => {
    it('rejects an unknown field, naming it', () => {
      const err = rejectionOf(createPaymentSchema, { ...validCreate, discount: 5 });
      expect(err.message).toBe('unknown field: discount');
    });

    it('rejects several unknown fields, naming each', () => {
      const err = rejectionOf(createPaymentSchema, { ...validCreate, discount: 5, coupon: 'x' });
      expect(err.message).toMatch(/^unknown fields: /);
      expect(err.message).toContain('discount');
      expect(err.message).toContain('coupon');
    });

    it.each([
      ['null', null],
      ['an array', [validCreate]],
      ['a string', 'payment'],
      ['a number', 42],
      ['nothing', undefined],
    ])('rejects %s with a message saying an object was expected', (_name, body) => {
      const err = rejectionOf(createPaymentSchema, body);
      expect(err.message).toMatch(/expected object/);
      expect(err.options.details).toEqual([expect.objectContaining({ path: '(body)' })]);
    });

    it('reports every problem in details, and the first one in the message', () => {
      const err = rejectionOf(createPaymentSchema, { ...validCreate, amount: 0, currency: 'cny' });
      const paths = (err.options.details ?? []).map((d) => d.path);
      expect(paths).toEqual(expect.arrayContaining(['amount', 'currency']));
      expect(err.message).toBe(err.options.details?.[0]?.message);
    });
  });
});

describe('callbackSchema', () => {
  const success = { result: 'SUCCESS', transactionId: 'wx-42', paidAmount: 1999 };

  it('accepts a SUCCESS with transactionId and paidAmount', () => {
    expect(parseOrThrow(callbackSchema, success)).toEqual(success);
  });

  it('accepts a FAILED with nothing else', () => {
    expect(parseOrThrow(callbackSchema, { result: 'FAILED' })).toEqual({ result: 'FAILED' });
  });

  it.each([
    ['an unknown result', { ...success, result: 'OK' }, 'result', /SUCCESS or FAILED/],
    ['a lower-case result', { ...success, result: 'success' }, 'result', /SUCCESS or FAILED/],
    ['a missing result', { transactionId: 'wx-42', paidAmount: 1999 }, 'result', /SUCCESS or FAILED/],
    ['a SUCCESS without transactionId', { result: 'SUCCESS', paidAmount: 1999 }, 'transactionId', /required for SUCCESS/],
    ['a SUCCESS without paidAmount', { result: 'SUCCESS', transactionId: 'wx-42' }, 'paidAmount', /required for SUCCESS/],
    ['an empty transactionId', { ...success, transactionId: '' }, 'transactionId', undefined],
    ['a transactionId over 128 characters', { ...success, transactionId: 't'.repeat(129) }, 'transactionId', undefined],
    ['a numeric transactionId', { ...success, transactionId: 42 }, 'transactionId', /string/],
    ['a fractional paidAmount', { ...success, paidAmount: 19.99 }, 'paidAmount', /integer/],
    ['a negative paidAmount', { ...success, paidAmount: -1 }, 'paidAmount', undefined],
    ['a paidAmount above 10^12', { ...success, paidAmount: 1e12 + 1 }, 'paidAmount', undefined],
    ['a string paidAmount', { ...success, paidAmount: '1999' }, 'paidAmount', /number/],
  ])('rejects %s, naming the field', (_name, body, field, pattern) => {
    expectRejectedNaming(callbackSchema, body, field, pattern);
  });

  it('rejects an unknown field, naming it', () => {
    expect(rejectionOf(callbackSchema, { ...success, signature: 'abc' }).message).toBe('unknown field: signature');
  });

  it('rejects a body that is not an object', () => {
    expect(rejectionOf(callbackSchema, [success]).message).toMatch(/expected object/);
  });
});
