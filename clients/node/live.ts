import { CLOSE_TOKEN_EXPIRED, LIVE_PATH, PING_MESSAGE, clientProtocols, messageType } from '../../core/index.ts';
import { MAX_TIMER_MS, backoffDelay, type BackoffOptions } from './backoff.ts';

/** A handler type checked bivariantly, so implementations with richer event types (ws, the DOM) fit. */
type Handler<E> = { bivariance(ev: E): void }['bivariance'];

/** The part of the WebSocket API the client uses (the platform's, or `ws`'s in Node 20). */
export interface WebSocketLike {
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

export interface LiveOptions {
  /**
   * The live endpoint. Default: the client's url with ws(s):// and /v1/live
   * (the local server); on AWS the stack's LiveUrl output.
   */
  readonly url?: string;
  /** Default: globalThis.WebSocket (browsers, Node 22+); Node 20 has none, pass `WebSocket` from the ws package. */
  readonly WebSocket?: WebSocketConstructor;
  /** Keep-alive interval (default 4 minutes; API Gateway closes a WebSocket idle for 10). A ping unanswered by the next one drops the connection (half-open) and reconnects. */
  readonly pingMs?: number;
}

/** The default live URL for a gateway base URL. */
export function liveUrlOf(base: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${LIVE_PATH}`;
  u.search = '';
  return u.toString();
}

export interface LiveConnectionOptions {
  readonly url: string;
  readonly WebSocket: WebSocketConstructor;
  readonly getToken: (forceRefresh: boolean) => Promise<string>;
  /** Called for each poke, and once after each (re)connect: changes may have arrived while disconnected. */
  readonly onPoke: () => void;
  readonly onConnected?: (connected: boolean) => void;
  readonly backoff?: BackoffOptions;
  readonly pingMs?: number;
  /** How long a handshake may take before it is given up and retried (default 30 s). */
  readonly connectTimeoutMs?: number;
}

/**
 * One live connection that stays open: reconnects with backoff and jitter
 * after any close, with a fresh token when the server closed it for an
 * expired one or the handshake failed (a refused token looks like that).
 */
export class LiveConnection {
  private socket: WebSocketLike | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ping: ReturnType<typeof setInterval> | null = null;
  private handshake: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private stopped = true;
  /** Whether a frame arrived since the last ping. */
  private heard = true;
  /** Drops the open socket as dead. */
  private dead: () => void = () => undefined;
  /** Bumped by stop(): a token request or timer of an earlier start must not open a second socket. */
  private generation = 0;

  constructor(private readonly options: LiveConnectionOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect(false);
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.clearHandshake();
    this.stopPing();
    const s = this.socket;
    this.socket = null;
    if (s !== null) {
      s.onclose = null;
      s.onmessage = null;
      s.onopen = null;
      // Not null: closing one still connecting makes the ws package emit an error, which must have a listener.
      s.onerror = () => undefined;
      try {
        s.close(1000, 'client stopped');
      } catch {
        // Still connecting in some implementations: it is dropped either way.
      }
    }
  }

  /** Open the connection again under a fresh token: the server pokes by the claims of the token a socket was opened with. */
  reconnect(): void {
    if (this.stopped) return;
    this.stop();
    this.stopped = false;
    this.failures = 0;
    this.connect(true);
  }

  private connect(refreshToken: boolean): void {
    this.timer = null;
    const generation = this.generation;
    this.options.getToken(refreshToken).then(
      (token) => {
        if (this.stopped || generation !== this.generation) return;
        let opened = false;
        let s: WebSocketLike;
        try {
          s = new this.options.WebSocket(this.options.url, clientProtocols(token));
        } catch {
          // A bad URL, or a token that is no valid subprotocol: retried like a refused handshake, never an unhandled rejection.
          this.retry(true);
          return;
        }
        this.socket = s;
        // A server (or proxy) that accepts and stays silent would hold the handshake for good.
        this.handshake = setTimeout(() => this.drop(s, false), this.options.connectTimeoutMs ?? 30_000);
        s.onopen = () => {
          this.clearHandshake();
          opened = true;
          this.failures = 0;
          this.options.onConnected?.(true);
          this.startPing(s);
          this.options.onPoke();
        };
        s.onmessage = (ev) => {
          this.heard = true;
          if (typeof ev.data === 'string' && messageType(ev.data) === 'poke') this.options.onPoke();
        };
        s.onerror = () => {
          // A close event follows every error; reconnecting happens there.
        };
        s.onclose = (ev) => {
          this.clearHandshake();
          this.stopPing();
          if (this.socket === s) this.socket = null;
          if (opened) this.options.onConnected?.(false);
          this.retry(!opened || ev.code === CLOSE_TOKEN_EXPIRED);
        };
        // A ping went unanswered: the connection is half-open (the network went away without a close),
        // and its close event may take minutes.
        this.dead = () => this.drop(s, true);
      },
      () => {
        if (generation === this.generation) this.retry(false); // no token now (identity provider offline): try again later
      },
    );
  }

  /** Give up on a socket that hangs (handshake or connection) without waiting for its close event, and reconnect. */
  private drop(s: WebSocketLike, opened: boolean): void {
    this.clearHandshake();
    this.stopPing();
    s.onopen = null;
    s.onmessage = null;
    s.onclose = null;
    s.onerror = () => undefined; // the ws package emits one when a connecting socket is closed
    try {
      s.close(4000, opened ? 'no pong' : 'handshake timeout');
    } catch {
      // Dropped either way.
    }
    if (this.socket === s) this.socket = null;
    if (opened) this.options.onConnected?.(false);
    this.retry(!opened);
  }

  private clearHandshake(): void {
    if (this.handshake !== null) clearTimeout(this.handshake);
    this.handshake = null;
  }

  private retry(refreshToken: boolean): void {
    if (this.stopped) return;
    const wait = backoffDelay(this.failures++, this.options.backoff);
    this.timer = setTimeout(() => this.connect(refreshToken), wait);
  }

  private startPing(s: WebSocketLike): void {
    this.stopPing();
    this.heard = true;
    this.ping = setInterval(() => {
      // Every ping is answered (a pong, or pokes meanwhile): nothing heard since the last one means a dead connection.
      if (!this.heard) return this.dead();
      this.heard = false;
      try {
        s.send(PING_MESSAGE);
      } catch {
        // Closing: the close handler reconnects.
      }
      // setInterval runs a delay over 2^31 - 1 ms every millisecond: that would drop every connection at once.
    }, Math.min(this.options.pingMs ?? 240_000, MAX_TIMER_MS));
    (this.ping as { unref?: () => void }).unref?.();
  }

  private stopPing(): void {
    if (this.ping !== null) clearInterval(this.ping);
    this.ping = null;
  }
}
