import { ConfigError } from './config.ts';
import { runCli } from './cli.ts';

try {
  const code = await runCli(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`));
  if (code >= 0) process.exitCode = code;
} catch (err) {
  process.stderr.write(`lakesync: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
