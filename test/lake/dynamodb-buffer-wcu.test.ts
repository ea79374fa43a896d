import { describe, expect, it } from 'vitest';
import { decodeRowWrites, decodeStamps, encodeRowWrites, encodeStamps } from '../../core/adapters/dynamodb-buffer-codec.ts';
import { attributeBytes, itemBytes, unitsOf, WriteMeter } from '../../core/adapters/dynamodb-buffer-wcu.ts';

/** The write-unit meter (DynamoDB's sizing rules) and the buffer's index encodings, without a server. */
describe('DynamoDB write units', () => {
  it('sizes items the way DynamoDB does', () => {
    expect(attributeBytes({ S: 'abc' })).toBe(3);
    expect(attributeBytes({ S: 'é☃' })).toBe(5); // UTF-8
    expect(attributeBytes({ B: new Uint8Array(10) })).toBe(10);
    expect(attributeBytes({ N: '7' })).toBe(2); // one digit: 1 + 1
    expect(attributeBytes({ N: '123456' })).toBe(4); // 3 + 1
    expect(attributeBytes({ N: '-1200' })).toBe(2); // trailing zeros do not count
    expect(attributeBytes({ BOOL: true })).toBe(1);
    expect(attributeBytes({ L: [{ S: 'ab' }, { N: '1' }] })).toBe(3 + (1 + 2) + (1 + 2));
    expect(attributeBytes({ M: { k: { S: 'v' } } })).toBe(3 + 1 + 1 + 1);
    expect(itemBytes({ pk: { S: 'L#0' }, n: { N: '10' } })).toBe(2 + 3 + 1 + 2);
    expect([0, 1, 1024, 1025, 4096].map(unitsOf)).toEqual([1, 1, 1, 2, 4]);
  });

  it('charges puts by size, replacements and updates by the larger item, transactions twice', () => {
    const m = new WriteMeter();
    const big = { pk: { S: 'L#0' }, sk: { S: '1' }, b: { B: new Uint8Array(3000) } };
    expect(m.count('PutItem', { TableName: 't', Item: big })).toBe(3);
    // A small update of that item still costs its stored size.
    expect(m.count('UpdateItem', { TableName: 't', Key: { pk: { S: 'L#0' }, sk: { S: '1' } }, ExpressionAttributeValues: { ':one': { N: '1' } } })).toBe(3);
    expect(m.count('UpdateItem', { TableName: 't', Key: { pk: { S: 'M#0' }, sk: { S: '-' } }, ExpressionAttributeValues: { ':v': { N: '5' } } })).toBe(1);
    expect(m.count('TransactWriteItems', { TransactItems: [{ Put: { TableName: 't', Item: { pk: { S: 'R#x' }, sk: { S: '-' }, s: { B: new Uint8Array(1500) } } } }] })).toBe(4);
    expect(m.count('BatchWriteItem', { RequestItems: { t: [{ DeleteRequest: { Key: { pk: { S: 'L#0' }, sk: { S: '1' } } } }] } })).toBe(3);
    expect(m.count('GetItem', {})).toBe(0);
    expect(m.units).toBe(14);
    expect(Object.fromEntries(m.byPrefix)).toEqual({ L: 9, M: 1, R: 4 });
    expect(Object.fromEntries(m.byKind)).toEqual({ PutItem: 3, UpdateItem: 4, TransactWriteItems: 4, BatchWriteItem: 3 });
  });
});

describe('DynamoDB buffer index encodings', () => {
  it('round-trips stamp groups, with any gaps of hlc and seq', () => {
    const stamps = [
      { hlc: 5n, seq: 10n },
      { hlc: 6n, seq: 11n },
      { hlc: 2n ** 40n, seq: 3n }, // a later hlc with an earlier seq
      { hlc: 2n ** 64n - 1n, seq: 2n ** 62n },
    ];
    const bytes = encodeStamps(stamps);
    expect(decodeStamps(bytes)).toEqual(stamps);
    expect(encodeStamps(stamps.slice(0, 2)).length).toBeLessThanOrEqual(6);
    expect(decodeStamps(encodeStamps([]))).toEqual([]);
    expect(() => encodeStamps([...stamps].reverse())).toThrow(RangeError);
  });

  it('round-trips row writes', () => {
    const writes = [
      { entry: 0, explicit: false },
      { entry: 300, explicit: true },
      { entry: -1, table: 'tâble', rowId: 'r:1', explicit: true },
    ];
    expect(decodeRowWrites(encodeRowWrites(writes))).toEqual(writes);
  });
});
