/**
 * The Node client's clock takes in the hlc of what it pulls (found by review;
 * the test failed before the fix).
 */
import { describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import type { Authenticator } from '../../core/auth/principal.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import { createHttpApp } from '../../core/http/app.ts';
import type { Schema } from '../../core/schema.ts';
import { LakeSyncClient } from './client.ts';

const SCHEMA: Schema = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] };

/** The token is the client id (tests only). */
const auth: Authenticator = {
  authenticate: (header) => {
    const clientId = (header ?? '').replace(/^Bearer /, '');
    return Promise.resolve({ clientId, userId: 'u', claims: { sub: 'u' }, admin: false });
  },
};

describe('Node client clock', () => {
  // client.ts pullAll feeds only the page's serverHlc to clock.receive, never the hlc of the
  // deltas it applies. docs/protocol.md (HLC): clients MUST receive() "every serverHlc (and
  // the hlc of every received delta)". In a deployment where each gateway instance has its
  // own clock (functions/aws/http.ts: one HybridLogicalClock per Lambda instance), the
  // instance that answers a pull may be behind the delta it serves (its writer's clock was
  // ahead, within the drift limit). The reader's next edit is then stamped below the value it
  // shows, and loses: the edit does not even show locally.
  it('an edit made after pulling a value wins over that value, whatever clock the pulling instance has', async () => {
    const buffer = new MemoryBuffer();
    // Two gateway instances over one buffer, each with its own clock (two Lambda instances).
    const writerSide = createHttpApp({ gateway: new Gateway({ buffer, schema: SCHEMA, rules: null, clock: new HybridLogicalClock() }), auth, tokenCache: false });
    const readerSide = createHttpApp({ gateway: new Gateway({ buffer, schema: SCHEMA, rules: null, clock: new HybridLogicalClock() }), auth, tokenCache: false });
    const via = (app: typeof writerSide): typeof fetch => (input, init) => Promise.resolve(app.fetch(new Request(input as string, init)));
    const open = (clientId: string, fetchImpl: typeof fetch, wallClock?: () => number) =>
      LakeSyncClient.open({
        url: 'http://gateway',
        database: ':memory:',
        clientId,
        schema: SCHEMA,
        initialSync: 'pull',
        getToken: ({ clientId: id }) => Promise.resolve(id),
        fetch: fetchImpl,
        ...(wallClock !== undefined ? { wallClock } : {}),
      });
    const ahead = await open('ahead', via(writerSide), () => Date.now() + 30_000);
    const reader = await open('reader', via(readerSide));
    try {
      ahead.insert('todos', 't1', { title: 'seen' });
      await ahead.sync();
      await reader.sync();
      expect(reader.db.prepare('SELECT title FROM todos').pluck().get()).toBe('seen');
      reader.update('todos', 't1', { title: 'edited after seeing it' });
      expect(reader.db.prepare('SELECT title FROM todos').pluck().get()).toBe('edited after seeing it');
    } finally {
      await ahead.close();
      await reader.close();
    }
  });
});
