// Chunk deltas: a changed chunk stored as a patch against 1-4 old chunks ("bases"). When a few
// rows of a table change, most changed chunks differ from old ones by one removed, added or
// rewritten row, or by shifted boundaries; a patch of COPY and INSERT ops stores them in tens of
// bytes instead of kilobytes.
//
// Patch encoding:
//   u8 version = 1, u32le contentLength, then ops until the end of the patch:
//   0x00 COPY:   u8 base index, u32le offset, u32le length   (bases[index][offset .. offset+length))
//   0x01 INSERT: u32le length, then `length` literal bytes
// Op lengths are > 0.
import { CorruptObjectError } from '../errors.ts';

/** Most bases a delta may use. */
export const MAX_DELTA_BASES = 4;

const VERSION = 1;
const OP_COPY = 0x00;
const OP_INSERT = 0x01;
const HEADER_SIZE = 5;
const COPY_SIZE = 10;
const INSERT_HEADER_SIZE = 5;
/** Shorter targets are not worth a patch: the header and one op are already 15 bytes. */
const MIN_TARGET = 64;
/** Anchor length: long enough that a hit in table rows is rarely a coincidence. */
const PROBE = 32;
/**
 * Anchors are tried every PROBE_STEP bytes, so an unchanged run of PROBE + PROBE_STEP bytes is
 * found. After every MISSES_PER_DOUBLING misses in a row the step doubles (up to MAX_STEP): each
 * miss scans every base whole, and unrelated data, or table rows whose JSON shares only 32-byte
 * fragments with the bases, would otherwise cost (target / 16) scans of all bases. A real match
 * found after a long step loses nothing: it is extended backwards.
 */
const PROBE_STEP = 16;
const MISSES_PER_DOUBLING = 4;
const MAX_STEP = 4096;
/** A COPY this long is a real match, not a coincidence: anchors are tried densely again after it. */
const LONG_COPY = 64;
/** A match at the expected continuation is taken from this length (a COPY costs 10 bytes). */
const MIN_MATCH = 16;
/** Anchors are first searched from this far before the expected offset: edits move data only a little. */
const NEAR = 4096;

/**
 * A patch that rebuilds `target` from `bases`, or undefined when no patch is worth it: its length
 * would exceed maxRatio * target.length, or the target is shorter than 64 bytes, or there are no
 * bases. Greedy: it follows the bases from where the last match ended and, where that fails,
 * looks for 32-byte anchors with the native indexOf; not an optimal diff, but fast.
 */
export function diffChunk(target: Buffer, bases: readonly Buffer[], maxRatio = 0.5): Buffer | undefined {
  if (bases.length > MAX_DELTA_BASES) throw new RangeError(`a delta uses at most ${MAX_DELTA_BASES} bases, got ${bases.length}`);
  const n = target.length;
  if (bases.length === 0 || n < MIN_TARGET) return undefined;
  const budget = maxRatio * n;
  if (!anyProbeFound(target, bases)) return undefined;

  // Ops as flat triples (base index, or -1 for INSERT; offset in the base, or in the target; length).
  const ops: number[] = [];
  let size = HEADER_SIZE;
  const copy = (base: number, offset: number, length: number): void => {
    const k = ops.length - 3;
    if (k >= 0 && ops[k] === base && ops[k + 1] + ops[k + 2] === offset) ops[k + 2] += length;
    else { ops.push(base, offset, length); size += COPY_SIZE; }
  };
  const insert = (offset: number, length: number): void => {
    ops.push(-1, offset, length);
    size += INSERT_HEADER_SIZE + length;
  };

  let i = 0; // next target byte to encode
  let b = 0; // expected continuation: bases[b] at offset o
  let o = 0;
  const last = n - PROBE;
  let misses = 0; // anchors missed since the last long COPY
  while (i < n) {
    let m = b < bases.length ? matchLength(target, i, bases[b], o) : 0;
    if (m < MIN_MATCH) {
      m = 0;
      // Anchors at i and onwards, the last one flush with the end of the target.
      let missed = i - 1; // the previous anchor tried, all of whose bytes are in no base
      for (let j = i; j <= last;) {
        // A match found now starts after `missed` (else that anchor would have hit), so at least
        // missed + 1 - i bytes are literal.
        if (size + INSERT_HEADER_SIZE + (missed + 1 - i) > budget) return undefined;
        const hit = findAnchor(target.subarray(j, j + PROBE), bases, b, o);
        if (hit === undefined) {
          missed = j;
          const step = Math.min(PROBE_STEP * 2 ** Math.floor(++misses / MISSES_PER_DOUBLING), MAX_STEP);
          j = j < last && j + step > last ? last : j + step;
          continue;
        }
        const base = bases[hit.base];
        let start = j;
        let q = hit.pos;
        while (start > i && q > 0 && target[start - 1] === base[q - 1]) { start--; q--; }
        if (start > i) insert(i, start - i);
        i = start;
        b = hit.base;
        o = q;
        m = matchLength(target, i, base, o);
        break;
      }
      if (m === 0) { insert(i, n - i); break; } // the tail matches nothing
    }
    if (m >= LONG_COPY) misses = 0;
    copy(b, o, m);
    if (size > budget) return undefined;
    i += m;
    o += m;
    // Boundaries shift: a chunk often continues with the head of the next base.
    if (o === bases[b].length && b + 1 < bases.length) { b++; o = 0; }
  }
  if (size > budget) return undefined;

  const patch = Buffer.allocUnsafe(size);
  patch[0] = VERSION;
  patch.writeUInt32LE(n, 1);
  let p = HEADER_SIZE;
  for (let k = 0; k < ops.length; k += 3) {
    const base = ops[k];
    const offset = ops[k + 1];
    const length = ops[k + 2];
    if (base >= 0) {
      patch[p] = OP_COPY;
      patch[p + 1] = base;
      patch.writeUInt32LE(offset, p + 2);
      patch.writeUInt32LE(length, p + 6);
      p += COPY_SIZE;
    } else {
      patch[p] = OP_INSERT;
      patch.writeUInt32LE(length, p + 1);
      p += INSERT_HEADER_SIZE + target.copy(patch, p + INSERT_HEADER_SIZE, offset, offset + length);
    }
  }
  return patch;
}

/** The content length a patch declares (from its header), without applying it. */
export function deltaContentLength(patch: Buffer, name = 'delta'): number {
  if (patch.length < HEADER_SIZE) throw new CorruptObjectError(name, `delta header truncated (${patch.length} bytes)`);
  if (patch[0] !== VERSION) throw new CorruptObjectError(name, `delta version ${patch[0]} is not supported`);
  return patch.readUInt32LE(1);
}

/** Rebuilds the target. Throws CorruptObjectError on any malformed patch; never returns wrong-length output. */
export function applyDelta(patch: Buffer, bases: readonly Buffer[], name = 'delta'): Buffer {
  const length = deltaContentLength(patch, name);
  const fail = (why: string): never => { throw new CorruptObjectError(name, `delta ${why}`); };
  // Validate every op before allocating, so a corrupt header cannot make us allocate gigabytes.
  let total = 0;
  for (let p = HEADER_SIZE; p < patch.length;) {
    const op = patch[p];
    let n: number;
    if (op === OP_COPY) {
      if (p + COPY_SIZE > patch.length) fail(`COPY at byte ${p} runs past the end of the patch`);
      const index = patch[p + 1];
      const offset = patch.readUInt32LE(p + 2);
      n = patch.readUInt32LE(p + 6);
      if (index >= bases.length) fail(`COPY at byte ${p} uses base ${index}, but there are ${bases.length}`);
      if (offset + n > bases[index].length) fail(`COPY at byte ${p} reads ${offset}..${offset + n} of a ${bases[index].length}-byte base`);
      p += COPY_SIZE;
    } else if (op === OP_INSERT) {
      if (p + INSERT_HEADER_SIZE > patch.length) fail(`INSERT at byte ${p} runs past the end of the patch`);
      n = patch.readUInt32LE(p + 1);
      if (n > patch.length - p - INSERT_HEADER_SIZE) fail(`INSERT at byte ${p} of ${n} bytes runs past the end of the patch`);
      p += INSERT_HEADER_SIZE + n;
    } else {
      return fail(`op 0x${op.toString(16).padStart(2, '0')} at byte ${p} is unknown`);
    }
    if (n === 0) fail(`op at byte ${p} has length 0`);
    total += n;
    if (total > length) fail(`ops produce more than the declared ${length} bytes`);
  }
  if (total !== length) fail(`ops produce ${total} bytes, the header declares ${length}`);

  const out = Buffer.allocUnsafe(length);
  let w = 0;
  for (let p = HEADER_SIZE; p < patch.length;) {
    if (patch[p] === OP_COPY) {
      const offset = patch.readUInt32LE(p + 2);
      w += bases[patch[p + 1]].copy(out, w, offset, offset + patch.readUInt32LE(p + 6));
      p += COPY_SIZE;
    } else {
      const n = patch.readUInt32LE(p + 1);
      w += patch.copy(out, w, p + INSERT_HEADER_SIZE, p + INSERT_HEADER_SIZE + n);
      p += INSERT_HEADER_SIZE + n;
    }
  }
  return out;
}

/** Whether any of 4 probes spread over the target occurs in a base: unrelated data leaves at once. */
function anyProbeFound(target: Buffer, bases: readonly Buffer[]): boolean {
  const n = target.length;
  for (let k = 1; k < 8; k += 2) {
    const at = Math.min(Math.floor((n * k) / 8), n - PROBE);
    const probe = target.subarray(at, at + PROBE);
    for (const base of bases) if (base.includes(probe)) return true;
  }
  return false;
}

/** Where `probe` occurs: first in the expected base from a little before the expected offset, then anywhere. */
function findAnchor(probe: Buffer, bases: readonly Buffer[], b: number, o: number): { base: number; pos: number } | undefined {
  if (b < bases.length) {
    const start = Math.max(0, o - NEAR);
    let pos = bases[b].indexOf(probe, start);
    if (pos < 0 && start > 0) pos = bases[b].subarray(0, start + PROBE - 1).indexOf(probe);
    if (pos >= 0) return { base: b, pos };
  }
  for (let k = 0; k < bases.length; k++) {
    if (k === b) continue;
    const pos = bases[k].indexOf(probe);
    if (pos >= 0) return { base: k, pos };
  }
  return undefined;
}

/** How many bytes of target[i..] equal base[o..]: native compares of growing blocks, then byte by byte. */
function matchLength(target: Buffer, i: number, base: Buffer, o: number): number {
  const max = Math.min(target.length - i, base.length - o);
  let n = 0;
  let step = 64;
  while (step >= 8) {
    if (n + step <= max && target.compare(base, o + n, o + n + step, i + n, i + n + step) === 0) {
      n += step;
      if (step < 4096) step *= 2;
    } else {
      step >>= 1;
    }
  }
  while (n < max && target[i + n] === base[o + n]) n++;
  return n;
}

/**
 * The patch with only the bases it copies from, renumbered in order: a writer offers the old
 * chunks around a new one, and every base recorded costs 32 bytes in the index and a read on
 * restore. The patch is rewritten in place (it is the caller's).
 */
export function compactBases(patch: Buffer, bases: readonly Buffer[]): { patch: Buffer; bases: Buffer[] } {
  const used = new Array<boolean>(bases.length).fill(false);
  for (let p = HEADER_SIZE; p < patch.length;) {
    if (patch[p] === OP_COPY) { used[patch[p + 1]!] = true; p += COPY_SIZE; } else p += INSERT_HEADER_SIZE + patch.readUInt32LE(p + 1);
  }
  const number = new Array<number>(bases.length);
  const kept: Buffer[] = [];
  used.forEach((u, k) => { if (u) { number[k] = kept.length; kept.push(bases[k]!); } });
  if (kept.length === bases.length) return { patch, bases: kept };
  for (let p = HEADER_SIZE; p < patch.length;) {
    if (patch[p] === OP_COPY) { patch[p + 1] = number[patch[p + 1]!]!; p += COPY_SIZE; } else p += INSERT_HEADER_SIZE + patch.readUInt32LE(p + 1);
  }
  return { patch, bases: kept };
}
