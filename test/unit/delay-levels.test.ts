import {
  LEVEL_COUNT,
  MAX_DELAY_SECONDS,
  TOP_LEVEL,
  assertValidDelay,
  decomposeDelay,
  delayRoutingKey,
  highestLevel,
  levelBindingPattern,
  levelTtlSeconds,
  secondsUntil,
} from '../../src/messaging/delay-levels';
import { DESTINATIONS } from '../../src/messaging/topology';

/** AMQP topic matching: `*` is exactly one word, `#` is zero or more words. */
function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    const word = p[i];
    if (word === '#') {
      for (let skip = j; skip <= k.length; skip++) if (match(i + 1, skip)) return true;
      return false;
    }
    if (j === k.length) return false;
    return (word === '*' || word === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

/**
 * Walks a key down the level exchanges the way declareTopology binds them: at level k the key
 * either enters the level-k queue (bit set) or passes to the exchange below (bit clear).
 * Returns the levels whose queue the message waits in.
 */
function routeThroughLevels(key: string): number[] {
  const waitedIn: number[] = [];
  for (let level = TOP_LEVEL; level >= 0; level--) {
    const toQueue = topicMatches(levelBindingPattern(level, true), key);
    const toExchangeBelow = topicMatches(levelBindingPattern(level, false), key);
    // Exactly one binding must match, or the message is dropped or duplicated.
    expect([toQueue, toExchangeBelow].filter(Boolean)).toHaveLength(1);
    if (toQueue) waitedIn.push(level);
  }
  return waitedIn;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const range = (from: number, toInclusive: number) => Array.from({ length: toInclusive - from + 1 }, (_, i) => from + i);

describe('the test topic matcher', () => {
  it('treats * as exactly one word and # as zero or more words', () => {
    expect(topicMatches('*.1.#', 'a.1')).toBe(true);
    expect(topicMatches('*.1.#', 'a.1.b.c')).toBe(true);
    expect(topicMatches('*.1.#', '1.a')).toBe(false);
    expect(topicMatches('*.1.#', '1')).toBe(false);
    expect(topicMatches('#.payment.timer.due', 'payment.timer.due')).toBe(true);
    expect(topicMatches('#.payment.timer.due', '0.1.payment.timer.due')).toBe(true);
    expect(topicMatches('#.payment.timer.due', '0.1.notification.delivery.due')).toBe(false);
  });
});

describe('binary delay levels', () => {
  const ks = [1, 2, 3, 5, 8, 10, 12, 16, 20, 21];
  const cases: Array<[string, number, number[]]> = [
    ['1 s', 1, [0]],
    ['900 s (the default payment timeout)', 900, [9, 8, 7, 2]],
    ['30 days (2,592,000 s)', 2_592_000, [21, 18, 17, 16, 15, 11, 10, 8]],
    ...ks.map((k): [string, number, number[]] => [`2^${k} - 1 s`, 2 ** k - 1, range(0, k - 1).reverse()]),
    ...ks.map((k): [string, number, number[]] => [`2^${k} s`, 2 ** k, [k]]),
    ...ks.map((k): [string, number, number[]] => [`2^${k} + 1 s`, 2 ** k + 1, [k, 0]]),
  ];

  it('has 22 levels whose TTLs are 2^k seconds', () => {
    expect(LEVEL_COUNT).toBe(22);
    expect(TOP_LEVEL).toBe(21);
    expect(range(0, TOP_LEVEL).map(levelTtlSeconds)).toEqual(range(0, TOP_LEVEL).map((k) => 2 ** k));
    // The largest delay the API allows must fit in the levels.
    expect(sum(range(0, TOP_LEVEL).map(levelTtlSeconds))).toBeGreaterThanOrEqual(MAX_DELAY_SECONDS);
  });

  describe.each(cases)('a delay of %s', (_name, seconds, expectedLevels) => {
    it('decomposes into the levels of its set bits, highest first', () => {
      expect(decomposeDelay(seconds)).toEqual(expectedLevels);
    });

    it('waits in levels whose TTLs add up to exactly the delay', () => {
      expect(sum(decomposeDelay(seconds).map(levelTtlSeconds))).toBe(seconds);
    });

    it('gets a routing key of 22 bit words, most significant first, then the destination', () => {
      const key = delayRoutingKey(seconds, DESTINATIONS.paymentTimer);
      expect(key.endsWith(`.${DESTINATIONS.paymentTimer}`)).toBe(true);
      const words = key.split('.');
      const bits = words.slice(0, LEVEL_COUNT);
      expect(words.slice(LEVEL_COUNT).join('.')).toBe(DESTINATIONS.paymentTimer);
      expect(bits.every((b) => b === '0' || b === '1')).toBe(true);
      expect(bits).toHaveLength(22);
      const value = bits.reduce((acc, b, i) => acc + (b === '1' ? 2 ** (TOP_LEVEL - i) : 0), 0);
      expect(value).toBe(seconds);
    });

    it('routes through the binding patterns to exactly the levels of its set bits, then to its destination queue', () => {
      const key = delayRoutingKey(seconds, DESTINATIONS.paymentTimer);
      expect(routeThroughLevels(key)).toEqual(expectedLevels);
      expect(topicMatches(`#.${DESTINATIONS.paymentTimer}`, key)).toBe(true);
      expect(topicMatches(`#.${DESTINATIONS.notification}`, key)).toBe(false);
    });
  });

  it('routes a notification key to the notification queue only', () => {
    const key = delayRoutingKey(900, DESTINATIONS.notification);
    expect(routeThroughLevels(key)).toEqual([9, 8, 7, 2]);
    expect(topicMatches(`#.${DESTINATIONS.notification}`, key)).toBe(true);
    expect(topicMatches(`#.${DESTINATIONS.paymentTimer}`, key)).toBe(false);
  });

  it('gives a due-now delay of 0 an all-zero key that waits in no level', () => {
    const key = delayRoutingKey(0, DESTINATIONS.paymentTimer);
    expect(key).toBe(`${Array(22).fill('0').join('.')}.${DESTINATIONS.paymentTimer}`);
    expect(routeThroughLevels(key)).toEqual([]);
  });

  it('binds level k on word 21 - k, with a trailing # so any destination follows', () => {
    expect(levelBindingPattern(21, true)).toBe('1.#');
    expect(levelBindingPattern(21, false)).toBe('0.#');
    expect(levelBindingPattern(0, true)).toBe(`${'*.'.repeat(21)}1.#`);
    expect(levelBindingPattern(9, false)).toBe(`${'*.'.repeat(12)}0.#`);
  });

  it.each([
    ['0', 0],
    ['a negative delay', -1],
    ['a fraction', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['30 days + 1 s', MAX_DELAY_SECONDS + 1],
    ['2^22 s', 2 ** 22],
  ])('rejects %s', (_name, seconds) => {
    expect(() => decomposeDelay(seconds)).toThrow(RangeError);
    expect(() => assertValidDelay(seconds)).toThrow(/whole number of seconds from 1 to 2592000/);
  });

  it('accepts the bounds 1 s and 30 days', () => {
    expect(() => assertValidDelay(1)).not.toThrow();
    expect(() => assertValidDelay(MAX_DELAY_SECONDS)).not.toThrow();
  });
});

describe('secondsUntil', () => {
  const now = 1_700_000_000_123;

  it.each([
    [0, 0],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [1999, 2],
    [2000, 2],
    [900_000, 900],
    [900_001, 901],
    [2_592_000_000, 2_592_000],
  ])('rounds a deadline %i ms away up to %i s', (ahead, expected) => {
    expect(secondsUntil(now + ahead, now)).toBe(expected);
  });

  it('answers 0 for a deadline in the past', () => {
    expect(secondsUntil(now - 1, now)).toBe(0);
    expect(secondsUntil(now - 60_000, now)).toBe(0);
  });

  it('never delivers early: the delay covers the deadline and one second less would not', () => {
    for (let ahead = 1; ahead <= 10_000; ahead += 37) {
      const s = secondsUntil(now + ahead, now);
      expect(now + s * 1000).toBeGreaterThanOrEqual(now + ahead);
      expect(now + (s - 1) * 1000).toBeLessThan(now + ahead);
    }
  });
});

describe('highestLevel: where a delay starts waiting', () => {
  it.each([
    [1, 0],
    [2, 1],
    [3, 1],
    [900, 9],
    [1024, 10],
    [2_592_000, 21],
  ])('a delay of %i s starts in level %i, the highest level of its decomposition', (seconds, level) => {
    expect(highestLevel(seconds)).toBe(level);
    expect(decomposeDelay(seconds)[0]).toBe(level);
  });
});
