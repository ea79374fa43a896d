import type { Principal } from '../auth/principal.ts';
import { RuleSet } from '../rules.ts';
import { concerns, type Listener, type LiveChange } from './audience.ts';
import { CLOSE_GOING_AWAY, CLOSE_REPLACED, CLOSE_TOKEN_EXPIRED, POKE_MESSAGE, connectionExpiry } from './protocol.ts';

/** What the hub needs of one open WebSocket (ws's and the platform's WebSocket both fit). */
export interface LiveSocket {
  send(text: string): void;
  /** Bytes sent but not handed to the network yet (ws and the platform's WebSocket have it). */
  readonly bufferedAmount?: number;
  close(code: number, reason: string): void;
}

export interface LiveHubOptions {
  readonly now?: () => number;
  /** Pokes within this window become one (default 5 ms): a burst of pushes wakes each client once (and a client syncs once more at most after a poke that arrives mid-sync). */
  readonly coalesceMs?: number;
  /**
   * Connections one client id may hold (default 4); a newer one closes the
   * oldest. One token cannot fill the server's cap, and a client on a flaky
   * network, whose dead sockets the server has not noticed yet, is not locked out.
   */
  readonly perClient?: number;
  /** The sync rules: a change pokes only the clients whose pulls would carry it (default: no rules, every other client). */
  readonly rules?: RuleSet;
}

interface Connection {
  readonly expiresAt: number | null;
  readonly listener: Listener;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * The connected clients of one process (the local server, a Durable
 * Object): pokes them after appends and closes each one when its token
 * expires, so a connection never outlives the authority it was opened with.
 */
export class LiveHub {
  private readonly connections = new Map<LiveSocket, Connection>();
  private readonly now: () => number;
  private readonly coalesceMs: number;
  private readonly perClient: number;
  /** Each client id's sockets, oldest first. */
  private readonly byClient = new Map<string, LiveSocket[]>();
  private pending: ReturnType<typeof setTimeout> | null = null;
  /** Changes since the last broadcast; null: poke everyone. */
  private changes: LiveChange[] | null = [];
  private readonly rules: RuleSet;

  constructor(options: LiveHubOptions = {}) {
    this.rules = options.rules ?? new RuleSet(null);
    this.now = options.now ?? Date.now;
    this.coalesceMs = options.coalesceMs ?? 5;
    this.perClient = Math.max(1, options.perClient ?? 4);
  }

  get size(): number {
    return this.connections.size;
  }

  /** Track an authenticated socket; returns the function to call when it closes. */
  add(socket: LiveSocket, principal: Principal): () => void {
    const expiresAt = connectionExpiry(principal);
    const listener: Listener = { clientId: principal.clientId, claims: principal.claims, admin: principal.admin };
    const conn: Connection = { expiresAt, listener, timer: null };
    this.connections.set(socket, conn);
    const mine = this.byClient.get(principal.clientId) ?? [];
    mine.push(socket);
    this.byClient.set(principal.clientId, mine);
    while (mine.length > this.perClient) {
      const oldest = mine[0] as LiveSocket;
      this.remove(oldest);
      closeQuietly(oldest, CLOSE_REPLACED, 'replaced by a newer connection of this client');
    }
    if (expiresAt !== null) {
      // setTimeout's limit is 2^31-1 ms; a later expiry is checked again when that fires.
      const arm = (): void => {
        const wait = expiresAt - this.now();
        if (wait <= 0) return this.expire(socket);
        conn.timer = unref(setTimeout(arm, Math.min(wait, 2_147_483_647)));
      };
      arm();
    }
    return () => this.remove(socket);
  }

  /**
   * Wake the clients these appended changes concern (coalesced: changes
   * within the window are matched together); without changes, every client.
   */
  poke(changes?: readonly LiveChange[]): void {
    if (this.connections.size === 0) return;
    if (changes === undefined) this.changes = null;
    else if (this.changes !== null) for (const c of changes) this.changes.push(c);
    if (this.pending !== null) return;
    this.pending = unref(
      setTimeout(() => {
        this.pending = null;
        const batch = this.changes;
        this.changes = [];
        this.broadcast(batch);
      }, this.coalesceMs),
    );
  }

  /** Close every connection (server shutdown): clients reconnect with backoff. */
  closeAll(reason = 'server shutting down'): void {
    if (this.pending !== null) clearTimeout(this.pending);
    this.pending = null;
    this.changes = [];
    for (const socket of [...this.connections.keys()]) {
      this.remove(socket);
      closeQuietly(socket, CLOSE_GOING_AWAY, reason);
    }
  }

  private broadcast(changes: readonly LiveChange[] | null): void {
    const now = this.now();
    for (const [socket, conn] of [...this.connections]) {
      if (conn.expiresAt !== null && conn.expiresAt <= now) {
        this.expire(socket);
        continue;
      }
      if (changes !== null && !concerns(this.rules, conn.listener, changes)) continue;
      // A client that stopped reading: the pokes it has not read yet make it pull everything appended
      // before they arrive, so more would only grow this process's memory. (The threshold is well above a
      // poke and a pong, so what is buffered includes a poke.)
      if ((socket.bufferedAmount ?? 0) >= UNREAD_LIMIT) continue;
      try {
        socket.send(POKE_MESSAGE);
      } catch {
        // A socket that cannot take a frame is closing; its close handler removes it.
        this.remove(socket);
      }
    }
  }

  private expire(socket: LiveSocket): void {
    this.remove(socket);
    closeQuietly(socket, CLOSE_TOKEN_EXPIRED, 'token expired');
  }

  private remove(socket: LiveSocket): void {
    const conn = this.connections.get(socket);
    if (conn === undefined) return;
    if (conn.timer !== null) clearTimeout(conn.timer);
    this.connections.delete(socket);
    const mine = this.byClient.get(conn.listener.clientId);
    if (mine !== undefined) {
      const at = mine.indexOf(socket);
      if (at >= 0) mine.splice(at, 1);
      if (mine.length === 0) this.byClient.delete(conn.listener.clientId);
    }
  }
}

/** Bytes unsent to a socket past which it gets no more pokes. */
const UNREAD_LIMIT = 1024;

function closeQuietly(socket: LiveSocket, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closed: nothing left to do.
  }
}

/** Timers of the hub must not keep a process alive (Node); other runtimes have no unref. */
function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
