import express from 'express';
import { createSign, createVerify, generateKeyPairSync, randomInt, randomUUID, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { formatAlipayTime } from '../channels/alipay/alipay-adapter';
import { parseAlipayTime } from '../channels/alipay/alipay-notify';

/**
 * A fake of Alipay's OpenAPI 2.0 gateway for tests and the demo, speaking the real wire format:
 * `POST /gateway.do` with the common parameters in the query string and `biz_content` in a form
 * body, the request signed RSA2 by the app (every parameter but `sign`, sorted, `k=v&...`,
 * SHA256withRSA, base64) and checked here with the app's public key, its `timestamp` Beijing time
 * within 30 minutes; answers as
 * `{"<method>_response":{...},"sign":"..."}` with `sign` over the exact text of the response
 * object, made with the fake's own private key (standing in for Alipay's). Only
 * `alipay.trade.query` and `alipay.trade.close` are served.
 *
 * Scriptable per out_trade_no (our payment id); each query takes the next answer, the last repeats,
 * and a state answer sets the trade, which close then acts on as Alipay does (only WAIT_BUYER_PAY
 * closes; a closed trade ends the script, so later queries see it closed):
 *   PUT  /script/:outTradeNo  { "answers": [{ "kind": "error", "status": 503 }, { "kind": "paid", "totalAmount": "19.99" }],
 *                               "closeAnswers": [{ "kind": "throttled" }, { "kind": "normal" }] }
 *   PUT  /trades/:outTradeNo  { "status": "WAIT_BUYER_PAY", "totalAmount": "19.99" }   the trade as it is now
 *   GET  /trades/:outTradeNo  the trade (404 when there is none)
 *   GET  /calls?outTradeNo=   what the gateway was asked, in order, and whether each request verified
 *   POST /notify/:outTradeNo  { "url": "...", "tradeStatus": "TRADE_SUCCESS", ... }   posts an
 *        asynchronous notification (trade_status_sync) signed Alipay's way, answers { status, body }
 */

const REQUEST_VALID_MS = 30 * 60_000;

/** Answers that say what the trade is now (and then answer from it), or a fault of the gateway. */
const stateAnswers = [
  z.object({ kind: z.literal('paid'), totalAmount: z.string().optional(), tradeNo: z.string().max(64).optional(), finished: z.boolean().optional() }).strict(),
  /** WAIT_BUYER_PAY; paidBeforeClose: the buyer pays right after this query answers. */
  z.object({ kind: z.literal('waiting'), paidBeforeClose: z.boolean().optional() }).strict(),
  z.object({ kind: z.literal('closed') }).strict(),
  z.object({ kind: z.literal('missing') }).strict(),
  /** Any trade_status text, e.g. one Alipay may add later. */
  z.object({ kind: z.literal('status'), tradeStatus: z.string().min(1).max(40) }).strict(),
] as const;
const faultAnswers = [
  z.object({ kind: z.literal('error'), status: z.number().int().min(500).max(599).default(500) }).strict(),
  z.object({ kind: z.literal('throttled') }).strict(),
  /** A signed system error: 20000 aop.ACQ.SYSTEM_ERROR (the gateway's) or 40004 ACQ.SYSTEM_ERROR (the trade system's). */
  z.object({ kind: z.literal('system_error'), code: z.enum(['20000', '40004']).default('20000'), subCode: z.string().max(64).default('aop.ACQ.SYSTEM_ERROR') }).strict(),
  z.object({ kind: z.literal('slow'), ms: z.number().int().positive().max(120000) }).strict(),
] as const;
/**
 * tamper: the answer is altered after signing; forge: signed with a key that is not the fake's;
 * smuggle: a second, unsigned `<method>_response` saying the opposite is appended after the sign.
 */
const signing = { tamper: z.boolean().optional(), forge: z.boolean().optional(), smuggle: z.boolean().optional() };
const queryAnswerSchema = z.union([...stateAnswers, ...faultAnswers].map((s) => s.extend(signing)) as unknown as [z.ZodTypeAny, z.ZodTypeAny, ...z.ZodTypeAny[]]);
const closeAnswerSchema = z.union([z.object({ kind: z.literal('normal') }).strict(), ...faultAnswers].map((s) => s.extend(signing)) as unknown as [z.ZodTypeAny, z.ZodTypeAny, ...z.ZodTypeAny[]]);
const scriptSchema = z.object({ answers: z.array(queryAnswerSchema).min(1).optional(), closeAnswers: z.array(closeAnswerSchema).min(1).optional() }).strict();

type Signing = { tamper?: boolean; forge?: boolean; smuggle?: boolean };
type QueryAnswer = (
  | { kind: 'paid'; totalAmount?: string; tradeNo?: string; finished?: boolean }
  | { kind: 'waiting'; paidBeforeClose?: boolean }
  | { kind: 'closed' }
  | { kind: 'missing' }
  | { kind: 'status'; tradeStatus: string }
  | FaultAnswer
) &
  Signing;
type FaultAnswer = { kind: 'error'; status: number } | { kind: 'throttled' } | { kind: 'system_error'; code: string; subCode: string } | { kind: 'slow'; ms: number };
type CloseAnswer = ({ kind: 'normal' } | FaultAnswer) & Signing;

const tradeSchema = z.object({ status: z.string().min(1).max(40), totalAmount: z.string().regex(/^\d+(\.\d{1,2})?$/).default('0.01'), tradeNo: z.string().max(64).optional() }).strict();
const notifySchema = z
  .object({
    /** Where to post, e.g. http://127.0.0.1:8080/v1/channels/alipay/notify. */
    url: z.string().url(),
    tradeStatus: z.string().min(1).max(40).default('TRADE_SUCCESS'),
    /** Defaults to the trade's, as the fake knows it. */
    totalAmount: z.string().optional(),
    tradeNo: z.string().max(64).optional(),
    /** notify_time as unix milliseconds (a stale or replayed notification); default now. */
    notifyTimeMs: z.number().int().optional(),
    appId: z.string().optional(),
    /** Fields added to (or replacing) the notification's before signing. */
    extra: z.record(z.string(), z.string()).optional(),
    tamper: z.boolean().optional(),
    forge: z.boolean().optional(),
  })
  .strict();

export interface AlipayFakeTrade {
  status: string;
  totalAmount: string;
  tradeNo: string;
}

export interface AlipayFakeCall {
  method: string;
  outTradeNo: string | null;
  /** Whether the request's RSA2 signature verified with the app's public key. */
  signed: boolean;
  appId: string | null;
  /** The request's timestamp parameter, as sent (Beijing time). */
  timestamp: string | null;
  at: string;
  /** What the fake answered: the trade_status, a sub_code, or the fault. */
  answered: string;
}

export interface AlipayFakeOptions {
  appId: string;
  /** The app's public key: every request must verify with it. */
  appPublicKey: string | KeyObject;
  /** The fake's own private key, standing in for Alipay's: it signs answers and notifications. */
  alipayPrivateKey: string | KeyObject;
  now?: () => number;
}

/** Two fresh RSA-2048 key pairs (PEM): the app's, and the one the fake signs with as Alipay. Never committed. */
export function generateAlipayKeys(): { appPrivateKey: string; appPublicKey: string; alipayPrivateKey: string; alipayPublicKey: string } {
  const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const app = pair();
  const alipay = pair();
  return { appPrivateKey: app.privateKey, appPublicKey: app.publicKey, alipayPrivateKey: alipay.privateKey, alipayPublicKey: alipay.publicKey };
}

/**
 * Alipay's signing content: every parameter but the excluded ones and the empty ones, sorted by
 * name, as `name=value` (values decoded, never URL-encoded) joined by `&`.
 */
export function alipaySignContent(params: Record<string, string>, exclude: string[]): string {
  return Object.keys(params)
    .filter((k) => !exclude.includes(k) && params[k] !== '')
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

const rsa2Sign = (text: string, key: string | KeyObject) => createSign('RSA-SHA256').update(text, 'utf8').sign(key, 'base64');


export function createAlipayFakeApp(options: AlipayFakeOptions) {
  const now = options.now ?? Date.now;
  const trades = new Map<string, AlipayFakeTrade>();
  const scripts = new Map<string, QueryAnswer[]>();
  const closeScripts = new Map<string, CloseAnswer[]>();
  const calls: AlipayFakeCall[] = [];
  // A key of no one's: what a forger signs with.
  const forgerKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

  const next = <T>(queue: T[] | undefined): T | undefined => (queue ? (queue.length > 1 ? queue.shift() : queue[0]) : undefined);
  const newTradeNo = () => `${formatAlipayTime(now()).slice(0, 10).replace(/-/g, '')}22001${String(randomInt(1e9)).padStart(9, '0')}${String(randomInt(1e6)).padStart(6, '0')}`;

  /** `{"<method>_response":<content>,"sign":"..."}`, signed over the exact text of <content>. */
  function signedBody(method: string, content: Record<string, unknown>, how: Signing = {}): string {
    const key = `${method.replace(/\./g, '_')}_response`;
    const text = JSON.stringify(content);
    const sign = rsa2Sign(text, how.forge ? forgerKey : options.alipayPrivateKey);
    // An attacker's edit: a closed trade said paid, anything else said closed.
    const opposite = JSON.stringify({ ...content, code: '10000', trade_status: content.trade_status === 'TRADE_CLOSED' ? 'TRADE_SUCCESS' : 'TRADE_CLOSED' });
    return `{"${key}":${how.tamper ? opposite : text},"sign":"${sign}"${how.smuggle ? `,"${key}":${opposite}` : ''}}`;
  }
  const failure = (code: string, msg: string, subCode: string, subMsg: string, extra: Record<string, unknown> = {}) => ({ code, msg, sub_code: subCode, sub_msg: subMsg, ...extra });

  function tradeAnswer(outTradeNo: string): Record<string, unknown> {
    const trade = trades.get(outTradeNo);
    if (!trade) {
      return failure('40004', 'Business Failed', 'ACQ.TRADE_NOT_EXIST', '交易不存在', { buyer_pay_amount: '0.00', invoice_amount: '0.00', out_trade_no: outTradeNo, point_amount: '0.00', receipt_amount: '0.00' });
    }
    const paid = trade.status === 'TRADE_SUCCESS' || trade.status === 'TRADE_FINISHED';
    return {
      code: '10000',
      msg: 'Success',
      buyer_logon_id: '159****5620',
      buyer_pay_amount: paid ? trade.totalAmount : '0.00',
      buyer_user_id: '2088102122524333',
      invoice_amount: paid ? trade.totalAmount : '0.00',
      out_trade_no: outTradeNo,
      point_amount: '0.00',
      receipt_amount: paid ? trade.totalAmount : '0.00',
      ...(paid ? { send_pay_date: formatAlipayTime(now()) } : {}),
      total_amount: trade.totalAmount,
      trade_no: trade.tradeNo,
      trade_status: trade.status,
    };
  }

  function setTrade(outTradeNo: string, status: string, fields: { totalAmount?: string; tradeNo?: string } = {}): void {
    const current = trades.get(outTradeNo);
    trades.set(outTradeNo, { status, totalAmount: fields.totalAmount ?? current?.totalAmount ?? '0.01', tradeNo: fields.tradeNo ?? current?.tradeNo ?? newTradeNo() });
  }

  /** Applies a state answer to the trade; false for a fault. */
  function applyState(outTradeNo: string, answer: QueryAnswer): boolean {
    switch (answer.kind) {
      case 'paid':
        setTrade(outTradeNo, answer.finished ? 'TRADE_FINISHED' : 'TRADE_SUCCESS', { totalAmount: answer.totalAmount, tradeNo: answer.tradeNo });
        return true;
      case 'waiting':
        setTrade(outTradeNo, 'WAIT_BUYER_PAY');
        return true;
      case 'closed':
        setTrade(outTradeNo, 'TRADE_CLOSED');
        return true;
      case 'status':
        setTrade(outTradeNo, answer.tradeStatus);
        return true;
      case 'missing':
        trades.delete(outTradeNo);
        return true;
      default:
        return false;
    }
  }

  /** Answers a fault, naming what it answered; undefined when it did not (slow, then answered normally). */
  async function answerFault(res: express.Response, req: express.Request, method: string, answer: FaultAnswer & Signing): Promise<string | undefined> {
    switch (answer.kind) {
      case 'error':
        res.status(answer.status).type('text/html').send('<html><body>Service Unavailable</body></html>');
        return 'error';
      case 'throttled':
        res.status(429).type('text/plain').send('Too Many Requests');
        return 'throttled';
      case 'system_error': {
        const content = answer.code === '20000' ? failure('20000', 'Service Currently Unavailable', answer.subCode, '系统繁忙') : failure('40004', 'Business Failed', answer.subCode, '系统异常');
        res.type('application/json').send(signedBody(method, content, answer));
        return answer.subCode;
      }
      case 'slow':
        await new Promise((r) => setTimeout(r, answer.ms).unref());
        return req.socket.destroyed ? 'slow' : undefined; // too late for anyone: nothing more to send
    }
  }

  const app = express();

  app.post('/gateway.do', express.raw({ type: () => true, limit: '64kb' }), async (req, res) => {
    // The common parameters ride in the query string, biz_content in the form body (the SDK's
    // split); Alipay reads both as one set of parameters.
    const params: Record<string, string> = {};
    let duplicated = false;
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    for (const source of [new URL(req.originalUrl, 'http://fake').searchParams, new URLSearchParams(body)]) {
      for (const [k, v] of source) {
        if (k in params) duplicated = true;
        params[k] = v;
      }
    }
    const method = params.method ?? '';
    let outTradeNo: string | null = null;
    try {
      const biz = JSON.parse(params.biz_content ?? '{}') as { out_trade_no?: unknown };
      if (typeof biz.out_trade_no === 'string') outTradeNo = biz.out_trade_no;
    } catch {
      /* answered below */
    }
    let signed = false;
    try {
      signed = !duplicated && params.sign_type === 'RSA2' && createVerify('RSA-SHA256').update(alipaySignContent(params, ['sign']), 'utf8').verify(options.appPublicKey, params.sign ?? '', 'base64');
    } catch {
      signed = false;
    }
    const call: AlipayFakeCall = { method, outTradeNo, signed, appId: params.app_id ?? null, timestamp: params.timestamp ?? null, at: new Date(now()).toISOString(), answered: '' };
    calls.push(call);
    const answerWith = (content: Record<string, unknown>, how?: Signing) => {
      call.answered = String(content.trade_status ?? content.sub_code ?? content.msg);
      res.type('application/json').send(signedBody(method, content, how));
    };

    if (method !== 'alipay.trade.query' && method !== 'alipay.trade.close') {
      call.answered = 'isv.invalid-method';
      res.type('application/json').send(JSON.stringify({ error_response: failure('40002', 'Invalid Arguments', 'isv.invalid-method', '不存在的方法名') }));
      return;
    }
    if (params.app_id !== options.appId) return answerWith(failure('40002', 'Invalid Arguments', 'isv.invalid-app-id', '无效的AppID参数'));
    if (params.charset?.toLowerCase() !== 'utf-8' || params.version !== '1.0') return answerWith(failure('40002', 'Invalid Arguments', 'isv.invalid-charset', '字符集或版本错误'));
    // timestamp is Beijing time, and a request expires 30 minutes after it.
    const sentAt = parseAlipayTime(params.timestamp);
    if (sentAt === undefined || Math.abs(now() - sentAt) > REQUEST_VALID_MS) return answerWith(failure('40002', 'Invalid Arguments', 'isv.invalid-timestamp', '非法的时间戳参数'));
    if (!signed) return answerWith(failure('40002', 'Invalid Arguments', 'isv.invalid-signature', '验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配'));
    if (outTradeNo === null) return answerWith(failure('40004', 'Business Failed', 'ACQ.INVALID_PARAMETER', '参数无效'));

    if (method === 'alipay.trade.query') {
      const answer = next(scripts.get(outTradeNo));
      if (answer && !applyState(outTradeNo, answer)) {
        const fault = await answerFault(res, req, method, answer as FaultAnswer & Signing);
        if (fault) return void (call.answered = fault);
      }
      answerWith(tradeAnswer(outTradeNo), answer);
      if (answer?.kind === 'waiting' && answer.paidBeforeClose) setTrade(outTradeNo, 'TRADE_SUCCESS');
      return;
    }

    const closeAnswer = next(closeScripts.get(outTradeNo));
    if (closeAnswer && closeAnswer.kind !== 'normal') {
      const fault = await answerFault(res, req, method, closeAnswer);
      if (fault) return void (call.answered = fault);
    }
    const trade = trades.get(outTradeNo);
    if (!trade) return answerWith(failure('40004', 'Business Failed', 'ACQ.TRADE_NOT_EXIST', '交易不存在'), closeAnswer);
    if (trade.status !== 'WAIT_BUYER_PAY') return answerWith(failure('40004', 'Business Failed', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法'), closeAnswer);
    trade.status = 'TRADE_CLOSED';
    // The script described the buyer's side until now: later queries see the closed trade.
    scripts.delete(outTradeNo);
    answerWith({ code: '10000', msg: 'Success', out_trade_no: outTradeNo, trade_no: trade.tradeNo }, closeAnswer);
  });

  const control = express.Router();
  control.use(express.json({ limit: '64kb' }));
  const badRequest = (res: express.Response, error: z.ZodError) => res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: error.issues[0]?.message ?? 'bad request' } });

  control.put('/script/:outTradeNo', (req, res) => {
    const parsed = scriptSchema.safeParse(req.body);
    if (!parsed.success) return void badRequest(res, parsed.error);
    if (parsed.data.answers) scripts.set(req.params.outTradeNo, [...(parsed.data.answers as QueryAnswer[])]);
    if (parsed.data.closeAnswers) closeScripts.set(req.params.outTradeNo, [...(parsed.data.closeAnswers as CloseAnswer[])]);
    res.status(204).end();
  });
  control.put('/trades/:outTradeNo', (req, res) => {
    const parsed = tradeSchema.safeParse(req.body);
    if (!parsed.success) return void badRequest(res, parsed.error);
    setTrade(req.params.outTradeNo, parsed.data.status, parsed.data);
    res.status(204).end();
  });
  control.get('/trades/:outTradeNo', (req, res) => {
    const trade = trades.get(req.params.outTradeNo);
    if (!trade) return void res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such trade' } });
    res.json(trade);
  });
  control.get('/calls', (req, res) => {
    const id = req.query.outTradeNo;
    res.json({ calls: typeof id === 'string' ? calls.filter((c) => c.outTradeNo === id) : calls.slice(-1000) });
  });

  // An asynchronous notification (trade_status_sync), form-encoded and signed as Alipay signs
  // them: every field but sign and sign_type, sorted, k=v&..., SHA256withRSA.
  control.post('/notify/:outTradeNo', async (req, res) => {
    const parsed = notifySchema.safeParse(req.body);
    if (!parsed.success) return void badRequest(res, parsed.error);
    const n = parsed.data;
    const outTradeNo = req.params.outTradeNo;
    const trade = trades.get(outTradeNo);
    const totalAmount = n.totalAmount ?? trade?.totalAmount ?? '0.01';
    const at = n.notifyTimeMs ?? now();
    const paid = n.tradeStatus === 'TRADE_SUCCESS' || n.tradeStatus === 'TRADE_FINISHED';
    const fields: Record<string, string> = {
      gmt_create: formatAlipayTime(at - 60_000),
      charset: 'utf-8',
      seller_email: 'shop@example.com',
      subject: '测试订单 & more',
      buyer_id: '2088102122524333',
      invoice_amount: paid ? totalAmount : '0.00',
      notify_id: randomUUID().replace(/-/g, ''),
      fund_bill_list: JSON.stringify([{ amount: totalAmount, fundChannel: 'ALIPAYACCOUNT' }]),
      notify_type: 'trade_status_sync',
      trade_status: n.tradeStatus,
      receipt_amount: paid ? totalAmount : '0.00',
      app_id: n.appId ?? options.appId,
      auth_app_id: n.appId ?? options.appId,
      buyer_pay_amount: paid ? totalAmount : '0.00',
      seller_id: '2088102119685838',
      ...(paid ? { gmt_payment: formatAlipayTime(at - 30_000) } : {}),
      notify_time: formatAlipayTime(at),
      version: '1.0',
      out_trade_no: outTradeNo,
      total_amount: totalAmount,
      trade_no: n.tradeNo ?? trade?.tradeNo ?? newTradeNo(),
      point_amount: '0.00',
      ...n.extra,
    };
    fields.sign_type = 'RSA2';
    fields.sign = rsa2Sign(alipaySignContent(fields, ['sign', 'sign_type']), n.forge ? forgerKey : options.alipayPrivateKey);
    if (n.tamper) fields.total_amount = totalAmount === '0.01' ? '0.02' : '0.01';
    try {
      const answer = await fetch(n.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: new URLSearchParams(fields).toString(),
        signal: AbortSignal.timeout(10000),
      });
      res.json({ status: answer.status, body: await answer.text() });
    } catch (err) {
      res.status(502).json({ error: { code: 'UNAVAILABLE', message: (err as Error).message } });
    }
  });
  control.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(control);

  return app;
}
