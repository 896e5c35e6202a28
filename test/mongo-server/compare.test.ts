// The stand-in's BSON value order, checked against MongoDB's documented rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Binary, BSON, Decimal128, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp } from 'bson';
import { COMPARE_DECODE, comparable, compareValues } from '../support/mongo-server/compare.ts';

const decoded = (v: unknown) => BSON.deserialize(BSON.serialize({ v }), COMPARE_DECODE).v;

test('numbers compare by value across int32, double, long and decimal; NaN first', () => {
  fc.assert(fc.property(fc.integer(), fc.double({ noNaN: true }), (i, d) => {
    const expected = Math.sign(i - d);
    assert.equal(Math.sign(compareValues(decoded(new Int32(i)), decoded(d))), expected === 0 ? 0 : expected);
    assert.equal(Math.sign(compareValues(decoded(Long.fromNumber(i)), decoded(d))), expected === 0 ? 0 : expected);
  }));
  fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (a, b) => {
    const c = compareValues(decoded(Long.fromBigInt(a)), decoded(Long.fromBigInt(b)));
    assert.equal(Math.sign(c), a < b ? -1 : a > b ? 1 : 0);
  }));
  assert.ok(compareValues(NaN, -Infinity) < 0);
  assert.equal(compareValues(decoded(Decimal128.fromString('2.50')), 2.5), 0);
  assert.equal(compareValues(-0, 0), 0);
});

test('type brackets order MinKey < null < numbers < strings < objects < arrays < binary < ObjectId < bool < date < timestamp < regex < MaxKey', () => {
  const ordered = [
    new MinKey(), null, 5, 'a', { a: 1 }, [1], new Binary(Buffer.from([1])), new ObjectId(), false, new Date(0),
    new Timestamp({ t: 1, i: 1 }), /x/, new MaxKey(),
  ].map(decoded);
  for (let i = 0; i + 1 < ordered.length; i++) assert.ok(compareValues(ordered[i], ordered[i + 1]) < 0, `${i} < ${i + 1}`);
});

test('strings compare by UTF-8 bytes; binaries by length, then subtype, then bytes', () => {
  assert.ok(compareValues('\uffff', '\u{1F600}') < 0, 'UTF-8 order, not UTF-16 code units');
  assert.ok(compareValues('Z', 'a') < 0);
  const bin = (sub: number, bytes: number[]) => decoded(new Binary(Buffer.from(bytes), sub));
  assert.ok(compareValues(bin(5, [1]), bin(0, [0, 0])) < 0, 'shorter first');
  assert.ok(compareValues(bin(0, [9]), bin(4, [0])) < 0, 'then subtype');
  assert.ok(compareValues(bin(0, [1, 2]), bin(0, [1, 3])) < 0, 'then bytes');
});

test('range operators match only within the bound\'s bracket, except MinKey/MaxKey bounds', () => {
  assert.equal(comparable('a', 5), false);
  assert.equal(comparable(Long.fromNumber(5), 5), true);
  assert.equal(comparable('a', new MinKey()), true);
  assert.equal(comparable(new ObjectId(), new MaxKey()), true);
});
