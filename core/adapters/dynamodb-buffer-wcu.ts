import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Write units counted from the requests a client sends, by DynamoDB's
 * rules, because moto (and DynamoDB itself for some calls) reports none:
 *
 * - an item's size is the sum of its attribute names (UTF-8) and values:
 *   a string its UTF-8 bytes, a binary its length, a number about one byte
 *   per two significant digits plus one, a boolean or null one byte, a list
 *   or map 3 bytes plus each element and one byte per element (plus the
 *   names of a map's keys);
 * - a write costs one unit per started KB of the item (at least one); an
 *   update or a replacing put costs the larger of the item before and after,
 *   a delete the size of the item deleted;
 * - a write inside TransactWriteItems costs twice as much;
 * - a failed conditional write is charged too (by DynamoDB at the size of
 *   the item already stored, at least 1; here at the size sent: every
 *   request is counted when it is sent, whatever its outcome).
 *
 * The meter remembers the size of every item it saw written, so updates and
 * deletes of those items are charged their stored size.
 */
export function attributeBytes(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberBytes(v.N);
  if (v.B !== undefined) return v.B.length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.L !== undefined) return 3 + v.L.reduce((n, e) => n + 1 + attributeBytes(e), 0);
  if (v.M !== undefined) return 3 + Object.entries(v.M).reduce((n, [k, e]) => n + 1 + utf8(k) + attributeBytes(e), 0);
  if (v.SS !== undefined) return v.SS.reduce((n, s) => n + utf8(s), 0);
  if (v.NS !== undefined) return v.NS.reduce((n, s) => n + numberBytes(s), 0);
  if (v.BS !== undefined) return v.BS.reduce((n, b) => n + b.length, 0);
  return 0;
}

export function itemBytes(item: Record<string, AttributeValue>): number {
  let n = 0;
  for (const [name, v] of Object.entries(item)) n += utf8(name) + attributeBytes(v);
  return n;
}

/** One unit per started KB, at least one. */
export function unitsOf(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 1024));
}

function numberBytes(n: string): number {
  const digits = n.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

const encoder = new TextEncoder();
function utf8(s: string): number {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? s.length : encoder.encode(s).length;
}

type Item = Record<string, AttributeValue>;
interface WriteOp {
  readonly TableName?: string;
  readonly Item?: Item;
  readonly Key?: Item;
  readonly ExpressionAttributeValues?: Item;
}

/** Counts the write units of every write a client sends (see above). */
export class WriteMeter {
  /** Units by request kind, e.g. PutItem, TransactWriteItems. */
  readonly byKind = new Map<string, number>();
  /** Units by the item's partition key prefix (before '#': L, R, S, M for the buffer). */
  readonly byPrefix = new Map<string, number>();
  private readonly sizes = new Map<string, number>();

  get units(): number {
    let n = 0;
    for (const v of this.byKind.values()) n += v;
    return n;
  }

  reset(): void {
    this.byKind.clear();
    this.byPrefix.clear();
  }

  /** Meter this client from now on (its `send` is wrapped). */
  attach(client: DynamoDBClient): DynamoDBClient {
    const send = client.send.bind(client) as (cmd: unknown) => Promise<unknown>;
    client.send = ((cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      this.count(cmd.constructor.name.replace(/Command$/, ''), cmd.input);
      return send(cmd);
    }) as typeof client.send;
    return client;
  }

  /** Count one request by its kind (PutItem, UpdateItem, ...) and input; returns its units. */
  count(kind: string, input: Record<string, unknown>): number {
    const ops: [string, WriteOp, number][] = [];
    switch (kind) {
      case 'PutItem':
      case 'UpdateItem':
      case 'DeleteItem':
        ops.push([kind, input as WriteOp, 1]);
        break;
      case 'BatchWriteItem':
        for (const [table, requests] of Object.entries(input.RequestItems as Record<string, { PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } }[]>)) {
          for (const r of requests) {
            if (r.PutRequest !== undefined) ops.push(['PutItem', { TableName: table, Item: r.PutRequest.Item }, 1]);
            else ops.push(['DeleteItem', { TableName: table, Key: r.DeleteRequest?.Key as Item }, 1]);
          }
        }
        break;
      case 'TransactWriteItems':
        for (const t of input.TransactItems as Record<string, WriteOp>[]) {
          const [k, op] = Object.entries(t)[0] as [string, WriteOp];
          ops.push([k === 'Put' ? 'PutItem' : k === 'Update' ? 'UpdateItem' : k === 'Delete' ? 'DeleteItem' : 'ConditionCheck', op, 2]);
        }
        break;
      default:
        return 0;
    }
    let total = 0;
    for (const [name, op, factor] of ops) {
      const key = op.Item ?? op.Key ?? {};
      const units = factor * this.op(name, op);
      const prefix = (key.pk?.S ?? '').split('#')[0] ?? '';
      this.byPrefix.set(prefix, (this.byPrefix.get(prefix) ?? 0) + units);
      total += units;
    }
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + total);
    return total;
  }

  private op(kind: string, op: WriteOp): number {
    const key = op.Item ?? op.Key ?? {};
    const id = `${op.TableName ?? ''}\u0000${key.pk?.S ?? ''}\u0000${key.sk?.S ?? ''}`;
    const before = this.sizes.get(id) ?? 0;
    if (kind === 'PutItem') {
      const size = itemBytes(op.Item ?? {});
      this.sizes.set(id, size);
      return unitsOf(Math.max(before, size));
    }
    if (kind === 'DeleteItem') {
      this.sizes.delete(id);
      return unitsOf(before);
    }
    // An update (or a condition check): the stored item, or at least what is sent.
    const sent = itemBytes(op.Key ?? {}) + itemBytes(op.ExpressionAttributeValues ?? {});
    return unitsOf(Math.max(before, sent));
  }
}
