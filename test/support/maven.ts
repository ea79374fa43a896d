import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

/** Downloading jars takes up to a few minutes on a fresh machine: give hooks that resolve them that long. */
export const MAVEN_SETUP_TIMEOUT_MS = 600_000;

/**
 * The runtime jars of a pom (a dependency list, nothing is built), resolved
 * once by Maven into `<cacheDir>/lib-<hash of the pom>` and re-resolved when
 * the pom changes; Maven keeps its own download cache in ~/.m2. `what` names
 * the fixture in errors.
 */
export function ensureMavenJars(pom: string, cacheDir: string, what: string, log: (line: string) => void = () => {}): string {
  const key = createHash('sha256').update(readFileSync(pom)).digest('hex').slice(0, 12);
  const lib = join(cacheDir, `lib-${key}`);
  if (existsSync(join(lib, '.complete'))) return lib;
  requireTool('mvn', ['-v'], 'Maven (Debian: maven)', what);
  log(`resolving the jars of ${what} into ${lib}`);
  mkdirSync(cacheDir, { recursive: true });
  // Parallel test files may race here: each resolves into its own directory and the first rename wins.
  const tmp = mkdtempSync(join(cacheDir, 'tmp-'));
  try {
    execFileSync(
      'mvn',
      ['-B', '-q', '-f', pom, `${DEPENDENCY_PLUGIN}:copy-dependencies`, `-DoutputDirectory=${tmp}`, '-DincludeScope=runtime'],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: MAVEN_SETUP_TIMEOUT_MS - 30_000, maxBuffer: 64 * 1024 * 1024 },
    );
    writeFileSync(join(tmp, '.complete'), '');
    try {
      renameSync(tmp, lib);
    } catch (e) {
      if (!existsSync(join(lib, '.complete'))) throw e;
    }
  } catch (e) {
    const out = e as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`mvn could not resolve ${what}:\n${String(out.stdout ?? '')}${String(out.stderr ?? e)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return lib;
}

export function requireTool(cmd: string, args: string[], tool: string, what: string): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    throw new Error(`${what} needs ${tool}: \`${cmd}\` was not found on the PATH`);
  }
}
