/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time and total
 * (inclusive) time per function, with file and line.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx test/bench/run.ts engine-memory
 *   node --import tsx test/bench/profile-summary.ts /tmp/prof [top]
 *
 * Given a directory, the largest profile in it is read (the main thread; the
 * tsx loader thread writes a small one beside it).
 *
 * tsx emits each module on one line, so for line-level hot spots profile an
 * unminified bundle instead and pass --lines:
 *
 *   npx esbuild test/bench/run.ts --bundle --platform=node --format=esm --packages=external --outfile=/tmp/b/run.mjs
 *   ln -s "$PWD/node_modules" /tmp/b/node_modules
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof /tmp/b/run.mjs engine-memory
 *   node --import tsx test/bench/profile-summary.ts /tmp/prof 30 --lines
 *
 * (esbuild keeps `// core/...ts` comments above each module in the bundle.)
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: readonly number[];
  readonly hitCount?: number;
  readonly positionTicks?: readonly { line: number; ticks: number }[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.startsWith('file://') ? relative(process.cwd(), new URL(url).pathname) : url || '(native)';
  // tsx emits each module on one line, so line numbers of .ts files say nothing.
  const line = url !== '' && !file.endsWith('.ts') ? `:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}  ${file}${line}`;
}

export function summarise(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    // Walk up the stack, counting each function once per sample (recursion).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur) as ProfileNode);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + us);
    }
  }
  const table = (title: string, m: Map<string, number>): string =>
    [
      `${title} (of ${(totalUs / 1000).toFixed(0)} ms sampled)`,
      ...[...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([l, us]) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${l}`),
    ].join('\n');
  return `${table('self time', self)}\n\n${table('total time', inclusive)}`;
}

function largestProfile(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  if (files[0] === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0];
}

/** Self-time samples by source line (from V8's positionTicks), with the line's text. */
export function hotLines(profile: Profile, top = 25): string {
  const ticks = new Map<string, { url: string; line: number; ticks: number; fn: string }>();
  let total = 0;
  for (const n of profile.nodes) {
    total += n.hitCount ?? 0;
    for (const t of n.positionTicks ?? []) {
      const key = `${n.callFrame.url}:${t.line}`;
      const cur = ticks.get(key) ?? { url: n.callFrame.url, line: t.line, ticks: 0, fn: n.callFrame.functionName };
      cur.ticks += t.ticks;
      ticks.set(key, cur);
    }
  }
  const sources = new Map<string, string[]>();
  const text = (url: string, line: number): string => {
    if (!url.startsWith('file://')) return '';
    let lines = sources.get(url);
    if (lines === undefined) {
      try {
        lines = readFileSync(new URL(url), 'utf8').split('\n');
      } catch {
        lines = [];
      }
      sources.set(url, lines);
    }
    return (lines[line - 1] ?? '').trim().slice(0, 110);
  };
  return [
    `hot lines (self samples, of ${total})`,
    ...[...ticks.values()]
      .sort((a, b) => b.ticks - a.ticks)
      .slice(0, top)
      .map(
        (t) =>
          `${((100 * t.ticks) / total).toFixed(1).padStart(5)}%  ${t.fn || '(anonymous)'} ${t.url.split('/').pop()}:${t.line}  ${text(t.url, t.line)}`,
      ),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const lines = process.argv.includes('--lines');
  const [path, top] = args;
  if (path === undefined) {
    console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
    process.exitCode = 2;
  } else {
    const file = statSync(path).isDirectory() ? largestProfile(path) : path;
    console.log(`${file}\n`);
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const n = top !== undefined ? Number(top) : 25;
    console.log(lines ? hotLines(profile, n) : summarise(profile, n));
  }
}
