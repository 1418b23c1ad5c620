import { sqlIdList } from '../../src/infra/database';

describe('sqlIdList: payment ids inlined into the hot statements', () => {
  it('when ids repeat and are out of order, then the text is ascending, without repeats, digits and commas only', () => {
    expect(sqlIdList([30, 2, 30, 11, 2])).toBe('2,11,30');
    expect(sqlIdList(new Set([Number.MAX_SAFE_INTEGER, 1]))).toBe(`1,${Number.MAX_SAFE_INTEGER}`);
  });

  it.each([
    ['zero', 0],
    ['a negative id', -1],
    ['a fraction', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['past the safe integers', Number.MAX_SAFE_INTEGER + 2],
    ['a string smuggled past the types', '1) OR (1=1' as unknown as number],
    ['a numeric string', '7' as unknown as number],
  ])('when one id is %s, then it throws instead of writing SQL', (_name, bad) => {
    expect(() => sqlIdList([1, bad, 3])).toThrow(/is not a row id/);
  });

  it('when there are no ids, then it throws (an empty IN list is a syntax error, not an empty result)', () => {
    expect(() => sqlIdList([])).toThrow(/no ids/);
  });
});
