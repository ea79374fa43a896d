import type { Listener } from './audience.ts';
import { POKE_MESSAGE } from './protocol.ts';

/**
 * Live updates where connections outlive the process that accepted them
 * (API Gateway WebSocket APIs): the connections are kept in a store, and
 * whoever learns of new deltas pokes them through the gateway's API.
 */
export interface LiveConnectionRecord {
  readonly id: string;
  /** When its token expires, in ms; null if never. */
  readonly expiresAt: number | null;
  /** When it was kept, in ms (set by the store; absent: long ago). */
  readonly since?: number;
  /**
   * Who it is, as far as the sync rules need to know (the client id, the
   * claims the rules read, admin): pokes go only to connections whose pulls
   * would carry a change. Absent (a record kept before this was stored): poked always.
   */
  readonly listener?: Listener;
}

/**
 * $connect keeps a connection before API Gateway has opened it, and until
 * then its Management API answers 410 as for a gone one: a poke within this
 * long of the connect must not forget it (the integration times out at 29 s).
 */
export const CONNECT_GRACE_MS = 30_000;

/** Where the open connections are kept. */
export interface LiveConnections {
  add(connection: LiveConnectionRecord): Promise<void>;
  remove(id: string): Promise<void>;
  list(): Promise<LiveConnectionRecord[]>;
}

/** Sends frames to connections held by the WebSocket gateway. */
export interface LivePoster {
  /** Sends `text`; false when the connection is gone (closed without a disconnect event reaching us yet). */
  post(id: string, text: string): Promise<boolean>;
  /** Closes a connection (a no-op for one already gone). */
  disconnect(id: string): Promise<void>;
}

export interface PokeReport {
  readonly poked: number;
  /** Gone connections, forgotten. */
  readonly gone: number;
  /** Connections not open yet (410 within CONNECT_GRACE_MS of their connect): kept. */
  readonly opening: number;
  /** Connections whose token expired: closed and forgotten. */
  readonly expired: number;
  /** Connections a poke failed for (kept: the next poke tries again). */
  readonly failed: readonly { readonly id: string; readonly error: unknown }[];
}

export interface PokeOptions {
  /** Requests in flight at most (default 16). */
  readonly concurrency?: number;
  /** Which connections the change concerns (default: all). Expired ones are closed whatever it says. */
  readonly concerns?: (connection: LiveConnectionRecord) => boolean;
}

/** Poke the stored connections a change concerns, at most `concurrency` requests at a time. */
export async function pokeConnections(connections: LiveConnections, poster: LivePoster, now: number, options: PokeOptions = {}): Promise<PokeReport> {
  const concurrency = options.concurrency ?? 16;
  const all = (await connections.list()).filter((c) => (c.expiresAt !== null && c.expiresAt <= now) || (options.concerns?.(c) ?? true));
  let poked = 0;
  let gone = 0;
  let expired = 0;
  let opening = 0;
  const failed: { id: string; error: unknown }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < all.length) {
      const c = all[next++] as LiveConnectionRecord;
      try {
        if (c.expiresAt !== null && c.expiresAt <= now) {
          await poster.disconnect(c.id);
          await connections.remove(c.id);
          expired++;
        } else if (await poster.post(c.id, POKE_MESSAGE)) {
          poked++;
        } else if (c.since !== undefined && now - c.since < CONNECT_GRACE_MS) {
          opening++;
        } else {
          await connections.remove(c.id);
          gone++;
        }
      } catch (error) {
        failed.push({ id: c.id, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, all.length) }, worker));
  return { poked, gone, expired, opening, failed };
}
