import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import {
  Gateway,
  HybridLogicalClock,
  JwtAuthenticator,
  createHttpApp,
  signHs256Token,
  type JwtAuthOptions,
} from '../../core/index.ts';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import type { LocalConfig } from './config.ts';

export interface RunningServer {
  readonly url: string;
  readonly devSecret: string | null;
  close(): Promise<void>;
}

function devSecret(dataDir: string): string {
  const path = join(dataDir, 'dev-secret');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, secret, { mode: 0o600 });
  return secret;
}

/** The embedded default: the engine on a SQLite buffer behind a Node HTTP server. */
export async function startLocalServer(config: LocalConfig, log: (e: object) => void = () => {}): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true });
  const secret = config.jwtSecret ?? (config.dev ? devSecret(config.dataDir) : null);
  const authOptions: JwtAuthOptions = {
    ...(secret !== null ? { hs256Secret: secret } : {}),
    ...(config.jwksUrl !== null ? { jwksUrl: config.jwksUrl } : {}),
  };
  const buffer = new SqliteBuffer({ path: join(config.dataDir, 'buffer.sqlite'), synchronous: config.synchronous, checkpoint: 'background' });
  const gateway = new Gateway({
    buffer,
    schema: config.schema,
    rules: config.rules,
    clock: new HybridLogicalClock({ maxDriftMs: config.maxDriftMs }),
  });
  const app = createHttpApp({
    gateway,
    auth: new JwtAuthenticator(authOptions),
    log,
    ...(config.rateLimit !== null ? { rateLimit: config.rateLimit } : {}),
    ...(config.dev && secret !== null
      ? {
          devTokens: ({ sub, clientId, admin }) =>
            signHs256Token(secret, { sub, clientId, expiresIn: '12h', ...(admin ? { role: 'admin' } : {}) }),
        }
      : {}),
  });
  const server = await new Promise<ServerType>((resolveServer) => {
    const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () => resolveServer(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.host}:${port}`,
    devSecret: config.dev ? secret : null,
    close: () =>
      new Promise<void>((resolveClose, reject) => {
        server.close((err) => {
          void buffer.close().then(() => (err ? reject(err) : resolveClose()), reject);
        });
        // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
        (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      }),
  };
}
