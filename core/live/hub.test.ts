import { describe, expect, it } from 'vitest';
import type { Principal } from '../auth/principal.ts';
import type { Delta } from '../delta.ts';
import { RuleSet } from '../rules.ts';
import type { LiveChange } from './audience.ts';
import { concerns, keptClaims } from './audience.ts';
import { LiveHub, type LiveSocket } from './hub.ts';
import { CLOSE_TOKEN_EXPIRED, POKE_MESSAGE, clientProtocols, isPing, tokenFromProtocols } from './protocol.ts';

function socket(): LiveSocket & { sent: string[]; closed: Array<[number, string]> } {
  const s = { sent: [] as string[], closed: [] as Array<[number, string]>, send: (t: string) => void s.sent.push(t), close: (c: number, r: string) => void s.closed.push([c, r]) };
  return s;
}
const principal = (exp?: number): Principal => ({ clientId: 'c', userId: 'u', admin: false, claims: exp === undefined ? { sub: 'u' } : { sub: 'u', exp } });
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('LiveHub', () => {
  it('coalesces a burst of pokes into one frame per socket', async () => {
    const hub = new LiveHub({ coalesceMs: 5 });
    const a = socket();
    const b = socket();
    hub.add(a, principal());
    hub.add(b, principal());
    for (let i = 0; i < 10; i++) hub.poke();
    await tick(30);
    expect(a.sent).toEqual([POKE_MESSAGE]);
    expect(b.sent).toEqual([POKE_MESSAGE]);
    hub.poke();
    await tick(30);
    expect(a.sent).toHaveLength(2);
  });

  it('does not poke a removed socket, and drops one whose send throws', async () => {
    const hub = new LiveHub({ coalesceMs: 1 });
    const a = socket();
    const remove = hub.add(a, principal());
    const broken: LiveSocket = { send: () => { throw new Error('closing'); }, close: () => undefined };
    hub.add(broken, principal());
    remove();
    hub.poke();
    await tick(20);
    expect(a.sent).toEqual([]);
    expect(hub.size).toBe(0);
  });

  it('does not queue pokes behind one a client has not read yet (a client that stops reading must not grow the server memory)', async () => {
    const hub = new LiveHub({ coalesceMs: 1 });
    const stuck = Object.assign(socket(), { bufferedAmount: 0 });
    hub.add(stuck, principal());
    hub.poke();
    await tick(10);
    stuck.bufferedAmount = 1024; // the peer stopped reading: pokes are still buffered
    for (let i = 0; i < 5; i++) {
      hub.poke();
      await tick(10);
    }
    expect(stuck.sent).toEqual([POKE_MESSAGE]); // a buffered poke still makes it pull everything appended before it arrives
    stuck.bufferedAmount = 0;
    hub.poke();
    await tick(10);
    expect(stuck.sent).toEqual([POKE_MESSAGE, POKE_MESSAGE]);
  });

  it('closes a connection whose token expired instead of poking it (4001)', async () => {
    let now = 1_000_000;
    const hub = new LiveHub({ coalesceMs: 1, now: () => now });
    const a = socket();
    hub.add(a, principal(now / 1000 + 3600));
    now += 3_600_001; // the clock passed exp before the timer fired
    hub.poke();
    await tick(20);
    expect(a.sent).toEqual([]);
    expect(a.closed).toEqual([[CLOSE_TOKEN_EXPIRED, 'token expired']]);
    expect(hub.size).toBe(0);
  });

  it('closes an already expired connection at once, and every connection on closeAll', () => {
    const hub = new LiveHub({ now: () => 5_000 });
    const old = socket();
    hub.add(old, principal(4));
    expect(old.closed).toEqual([[CLOSE_TOKEN_EXPIRED, 'token expired']]);
    const a = socket();
    hub.add(a, principal());
    hub.closeAll();
    expect(a.closed).toEqual([[1001, 'server shutting down']]);
    expect(hub.size).toBe(0);
  });
});

describe('LiveHub: a change pokes only the clients it concerns', () => {
  const rules = new RuleSet({
    buckets: [
      { name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } },
      { name: 'team', tables: { notes: [{ column: 'team', op: 'in', value: { claim: 'teams' } }] } },
    ],
  });
  const user = (clientId: string, sub: string, extra: Record<string, unknown> = {}, admin = false): Principal => ({
    clientId,
    userId: sub,
    admin,
    claims: { sub, ...extra },
  });
  const change = (clientId: string, table: string, before: Record<string, string> | null, after: Record<string, string> | null): LiveChange => ({
    delta: { clientId, table, rowId: 'r', op: 'update', columns: {}, hlc: 1n, deltaId: 'x' } as Delta,
    before,
    after,
  });

  it('pokes the owner\'s other devices, an admin, and a client the row leaves; not the writer or other users', async () => {
    const hub = new LiveHub({ coalesceMs: 1, rules });
    const sockets = { alicePhone: socket(), aliceLaptop: socket(), bob: socket(), ops: socket(), carol: socket() };
    hub.add(sockets.alicePhone, user('alice-phone', 'alice'));
    hub.add(sockets.aliceLaptop, user('alice-laptop', 'alice'));
    hub.add(sockets.bob, user('bob-1', 'bob'));
    hub.add(sockets.ops, user('ops-1', 'ops', {}, true));
    hub.add(sockets.carol, user('carol-1', 'carol'));
    hub.poke([change('alice-phone', 'todos', { owner: 'alice' }, { owner: 'alice' })]);
    await tick(20);
    const poked = (): string[] => Object.entries(sockets).filter(([, s]) => s.sent.length > 0).map(([k]) => k);
    expect(poked()).toEqual(['aliceLaptop', 'ops']);
    // Alice gives a row to carol: alice's laptop (the row leaves its view) and carol (it enters hers) pull.
    for (const s of Object.values(sockets)) s.sent.length = 0;
    hub.poke([change('alice-phone', 'todos', { owner: 'alice' }, { owner: 'carol' })]);
    await tick(20);
    expect(poked()).toEqual(['aliceLaptop', 'ops', 'carol']);
    // A burst within the window is matched as a whole; without changes, everyone is poked.
    for (const s of Object.values(sockets)) s.sent.length = 0;
    hub.poke([change('bob-1', 'todos', { owner: 'bob' }, null)]);
    hub.poke([change('ops-1', 'todos', null, { owner: 'carol' })]);
    await tick(20);
    expect(poked()).toEqual(['ops', 'carol']);
    for (const s of Object.values(sockets)) s.sent.length = 0;
    hub.poke();
    await tick(20);
    expect(poked()).toEqual(['alicePhone', 'aliceLaptop', 'bob', 'ops', 'carol']);
  });

  it('matches claims holding arrays, keeps only the claims rules read, and pokes every other client without rules', () => {
    const red = { clientId: 'x', admin: false, claims: { sub: 'x', teams: ['red'], email: 'x@example.com' } };
    expect(concerns(rules, red, [change('y', 'notes', null, { team: 'red' })])).toBe(true);
    expect(concerns(rules, red, [change('y', 'notes', null, { team: 'blue' })])).toBe(false);
    expect(concerns(rules, red, [change('y', 'unlisted', null, { team: 'red' })])).toBe(false);
    expect(keptClaims(rules, red.claims)).toEqual({ sub: 'x', teams: ['red'] });
    const open = new RuleSet(null);
    expect(concerns(open, red, [change('y', 'anything', null, {})])).toBe(true);
    expect(concerns(open, red, [change('x', 'anything', null, {})])).toBe(false); // its own write
    expect(concerns(open, red, [change('y', 'anything', null, null)])).toBe(false); // a delete of a row nobody saw
  });
});

describe('LiveHub per-client cap', () => {
  it('keeps at most perClient connections per client id: a newer one closes the oldest (4002), other clients untouched', async () => {
    const hub = new LiveHub({ perClient: 2, coalesceMs: 1 });
    const as = [socket(), socket(), socket()];
    const other = socket();
    hub.add(other, { ...principal(), clientId: 'other' });
    for (const s of as) hub.add(s, principal());
    expect(as[0]?.closed).toEqual([[4002, 'replaced by a newer connection of this client']]);
    expect(as[1]?.closed).toEqual([]);
    expect(other.closed).toEqual([]);
    expect(hub.size).toBe(3);
    hub.poke();
    await tick(20);
    expect(as.map((s) => s.sent.length)).toEqual([0, 1, 1]);
    expect(other.sent).toHaveLength(1);
  });
});

describe('live protocol', () => {
  it('reads the bearer token from the offered subprotocols', () => {
    expect(tokenFromProtocols(clientProtocols('a.b.c').join(', '))).toBe('a.b.c');
    expect(tokenFromProtocols('bearer.a.b.c')).toBeNull(); // lakesync.v1 not offered
    expect(tokenFromProtocols('lakesync.v1')).toBeNull();
    expect(tokenFromProtocols('lakesync.v1, bearer.x, bearer.y')).toBeNull(); // two tokens: refuse
    expect(tokenFromProtocols('lakesync.v1, bearer.')).toBeNull();
    expect(tokenFromProtocols(undefined)).toBeNull();
  });

  it('recognizes pings only', () => {
    expect(isPing('{"type":"ping"}')).toBe(true);
    expect(isPing('{"type":"poke"}')).toBe(false);
    expect(isPing('ping')).toBe(false);
    expect(isPing(`{"type":"ping","pad":"${'x'.repeat(300)}"}`)).toBe(false);
  });
});
