import type { Principal } from '../auth/principal.ts';

/**
 * Live updates: a WebSocket on which the server pokes connected clients
 * when new deltas were appended; a poked client pulls at once instead of
 * waiting for its next round. A poke carries no data (the pull that follows
 * applies the client's sync rules), so a missed or extra poke only moves a
 * pull earlier or later. See docs/protocol.md, "Live updates".
 */

/** The local server's path; on AWS the WebSocket API has its own URL. */
export const LIVE_PATH = '/v1/live';

/** The subprotocol a client offers and the server selects. */
export const LIVE_PROTOCOL = 'lakesync.v1';

/**
 * The token rides as a second offered subprotocol, `bearer.<jwt>`: browsers
 * cannot set an Authorization header on a WebSocket, and a query string
 * ends up in access logs. JWT characters are all valid subprotocol characters.
 */
export const BEARER_PREFIX = 'bearer.';

/** Server to client. Clients ignore types they do not know. */
export const POKE_MESSAGE = '{"type":"poke"}';
/** Client to server keep-alive (API Gateway closes a WebSocket idle for 10 minutes); answered with a pong. */
export const PING_MESSAGE = '{"type":"ping"}';
export const PONG_MESSAGE = '{"type":"pong"}';

/** Close codes (4000–4999 are the application's). */
export const CLOSE_TOKEN_EXPIRED = 4001;
/** The client id opened more connections than the server keeps for one client: this, the oldest, was closed. */
export const CLOSE_REPLACED = 4002;
export const CLOSE_GOING_AWAY = 1001;

/** The subprotocols a client offers for `token`. */
export function clientProtocols(token: string): string[] {
  return [LIVE_PROTOCOL, `${BEARER_PREFIX}${token}`];
}

/**
 * The bearer token offered in a Sec-WebSocket-Protocol header (as one
 * comma-separated value, the way HTTP joins repeated headers), or null when
 * the header does not offer LIVE_PROTOCOL and one token.
 */
export function tokenFromProtocols(header: string | null | undefined): string | null {
  if (header === null || header === undefined) return null;
  const offered = header.split(',').map((p) => p.trim());
  if (!offered.includes(LIVE_PROTOCOL)) return null;
  const bearer = offered.filter((p) => p.startsWith(BEARER_PREFIX));
  if (bearer.length !== 1) return null;
  const token = (bearer[0] as string).slice(BEARER_PREFIX.length);
  return token.length > 0 ? token : null;
}

/** When a connection opened with this principal's token must close (its `exp`), in ms; null if the token never expires. */
export function connectionExpiry(principal: Principal): number | null {
  const exp = principal.claims['exp'];
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
}

/** The `type` of a live frame (both directions), or null for anything that is not one of ours (ignored). */
export function messageType(text: string): string | null {
  if (text.length > 256) return null;
  try {
    const m = JSON.parse(text) as unknown;
    const type = typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
    return typeof type === 'string' ? type : null;
  } catch {
    return null; // not JSON: ignored like any other unknown message
  }
}

/** Whether a text frame from a client is a ping (anything else is ignored). */
export function isPing(text: string): boolean {
  return messageType(text) === 'ping';
}
