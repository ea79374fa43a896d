import { ConfigError, loadConfig } from './config.ts';
import { startLocalServer } from './server.ts';
import { exitOnSignals } from './shutdown.ts';

/** `npm start`: run the embedded default until SIGINT/SIGTERM. */
const log = (entry: object): void => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
};

try {
  const config = loadConfig(process.env, process.cwd());
  const server = await startLocalServer(config, log);
  log({ level: 'info', msg: 'lakesync listening', url: server.url, dataDir: config.dataDir, dev: config.dev });
  const minted = server.devToken('dev-user', 'dev-client');
  if (minted !== null) {
    const token = await minted;
    log({ level: 'info', msg: 'dev mode: a token for sub=dev-user client_id=dev-client (or POST /v1/dev/token)', token });
  }
  exitOnSignals(server, log);
} catch (err) {
  log({ level: 'error', msg: err instanceof ConfigError ? err.message : String(err) });
  process.exit(1);
}
