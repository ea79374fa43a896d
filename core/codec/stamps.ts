import { Packer } from './storage.ts';

/**
 * A packed run of stamps: the (hlc, seq) pairs one append stored for one
 * client, sorted by hlc, as one blob. Buffers keep a run per (client,
 * append) instead of an index row per delta: a client's hlcs only grow, so
 * a new append's run lies above every stored one and the duplicate check is
 * one range lookup that finds nothing.
 *
 * Layout: varint count, u64 first hlc, varint first seq; then per further
 * pair the hlc step (varint; 0 escapes to a u64 absolute hlc for steps of
 * 2^53 or more: hlcs are strictly increasing, so a real step is never 0) and
 * the seq step (zigzag varint: seqs of one client may interleave with
 * others' in a mixed append; 0 escapes to the absolute seq, as every stamp
 * has its own seq). Varints here carry up to 53 bits.
 */

const BIG_STEP = 2 ** 53;
/** Reused: a run is copied out of it. */
const packer = new Packer();

export interface StampRun {
  /** Strictly increasing. */
  readonly hlcs: readonly bigint[];
  /** The seq stored under each hlc. */
  readonly seqs: readonly number[];
}

const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);
const unzigzag = (n: number): number => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);

/** Pack a run; `hlcs` must be strictly increasing and aligned with `seqs`. */
export function packStamps(run: StampRun): Uint8Array {
  const { hlcs, seqs } = run;
  const n = hlcs.length;
  if (n === 0 || seqs.length !== n) throw new RangeError('a stamp run needs as many seqs as hlcs, at least one');
  const w = packer;
  w.reset();
  w.varint53(n);
  let hlc = hlcs[0] as bigint;
  let seq = seqs[0] as number;
  w.u64(hlc);
  w.varint53(seq);
  for (let i = 1; i < n; i++) {
    const next = hlcs[i] as bigint;
    if (next <= hlc) throw new RangeError('stamp run hlcs must be strictly increasing');
    const step = next - hlc;
    if (step < BigInt(BIG_STEP)) w.varint53(Number(step));
    else {
      w.varint53(0);
      w.u64(next);
    }
    hlc = next;
    const s = seqs[i] as number;
    const z = zigzag(s - seq);
    if (z > 0 && z < BIG_STEP) w.varint53(z);
    else {
      w.varint53(0);
      w.varint53(s);
    }
    seq = s;
  }
  return w.view(0).slice();
}

export function unpackStamps(bytes: Uint8Array): StampRun {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (pos >= bytes.length) throw new RangeError('stamp run: read past end');
      const b = bytes[pos++] as number;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
      if (scale > BIG_STEP) throw new RangeError('stamp run: bad varint');
    }
  };
  const u64 = (): bigint => {
    if (pos + 8 > bytes.length) throw new RangeError('stamp run: read past end');
    const v = view.getBigUint64(pos);
    pos += 8;
    return v;
  };
  const n = varint();
  const hlcs = new Array<bigint>(n);
  const seqs = new Array<number>(n);
  let hlc = u64();
  let seq = varint();
  hlcs[0] = hlc;
  seqs[0] = seq;
  for (let i = 1; i < n; i++) {
    const step = varint();
    hlc = step === 0 ? u64() : hlc + BigInt(step);
    const z = varint();
    seq = z === 0 ? varint() : seq + unzigzag(z);
    hlcs[i] = hlc;
    seqs[i] = seq;
  }
  if (pos !== bytes.length) throw new RangeError('stamp run: trailing bytes');
  return { hlcs, seqs };
}
