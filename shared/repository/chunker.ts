// Content-defined chunking: FastCDC with normalized chunking (Xia et al., 2016/2020), 32-bit gear
// fingerprint. Pure: no I/O. Boundaries depend only on content, so an insert in the middle of a
// stream changes only the chunks around it. Parameters are recorded in the repository config.
import { createHash } from 'node:crypto';

export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

/** Small chunks because database rows are small (see docs/FORMAT.md, "Why 8 KiB"). */
export const DEFAULT_CHUNKER: ChunkerParams = { minSize: 2 * 1024, avgSize: 8 * 1024, maxSize: 64 * 1024 };

/** gear[i] = first 4 bytes (big-endian) of SHA-256(seed || "gear" || u32be(i)). */
export function gearTable(seed: Uint8Array): Uint32Array {
  const table = new Uint32Array(256);
  const idx = Buffer.alloc(4);
  for (let i = 0; i < 256; i++) {
    idx.writeUInt32BE(i);
    const h = createHash('sha256').update(seed).update('gear').update(idx).digest();
    table[i] = h.readUInt32BE(0);
  }
  return table;
}

/** A mask with `bits` ones in the most significant bits (they carry the longest byte history). */
function topMask(bits: number): number {
  return bits >= 32 ? 0xffffffff : (~((1 << (32 - bits)) - 1)) >>> 0;
}

export function validateParams(p: ChunkerParams): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avgSize) || p.minSize < 64 || p.minSize >= p.avgSize || p.maxSize <= p.avgSize || p.maxSize > 16 * 1024 * 1024) {
    throw new RangeError(`invalid chunker parameters ${JSON.stringify(p)}: need 64 <= min < avg (power of two) < max <= 16 MiB`);
  }
}

/**
 * Streaming chunker: push() buffers of any size, receive whole chunks through onChunk in order;
 * finish() emits the tail. A chunk handed to onChunk is valid only during that call (it may be a
 * view of the pushed buffer or of the chunker's own carry buffer), and nothing of a pushed buffer
 * is kept once push() returns: callers may reuse it (the backup reads sockets into reused slabs).
 * Holds at most maxSize bytes of pending data, in one buffer allocated once.
 */
export class Chunker {
  readonly params: ChunkerParams;
  private readonly gear: Uint32Array;
  private readonly maskS: number;
  private readonly maskL: number;
  /** the current chunk's bytes from earlier pushes: carry[0, pos) */
  private readonly carry: Buffer;
  private pos = 0; // bytes in the current chunk so far
  private fp = 0;
  private readonly onChunk: (chunk: Buffer) => void;

  constructor(params: ChunkerParams, gear: Uint32Array, onChunk: (chunk: Buffer) => void) {
    validateParams(params);
    this.params = params;
    this.gear = gear;
    const bits = Math.log2(params.avgSize);
    // Normalized chunking level 2: harder to cut before the average, easier after it.
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
    this.onChunk = onChunk;
    this.carry = Buffer.allocUnsafeSlow(params.maxSize);
  }

  push(data: Buffer): void {
    let off = 0;
    const n = data.length;
    const { minSize, avgSize, maxSize } = this.params;
    const gear = this.gear;
    while (off < n) {
      const base = this.pos - off; // p = base + i: bytes of the current chunk before data[i]
      let i = off;
      let fp = this.fp;
      let cut = -1;
      if (base + i < minSize) {
        // FastCDC skips hashing below the minimum size: no cut can happen there.
        i = Math.min(n, minSize - base);
      }
      if (base + i >= minSize && base + i < avgSize) {
        const maskS = this.maskS;
        const end = Math.min(n, avgSize - base);
        while (i < end) {
          fp = ((fp << 1) + gear[data[i]!]!) >>> 0;
          i++;
          if ((fp & maskS) === 0) { cut = i; break; }
        }
      }
      if (cut < 0 && base + i >= avgSize && base + i < maxSize) {
        const maskL = this.maskL;
        const end = Math.min(n, maxSize - base);
        while (i < end) {
          fp = ((fp << 1) + gear[data[i]!]!) >>> 0;
          i++;
          if ((fp & maskL) === 0) { cut = i; break; }
        }
      }
      if (cut < 0 && base + i >= maxSize) cut = i;
      if (cut >= 0) {
        if (base > 0) {
          // The chunk began in an earlier push: complete it in the carry buffer.
          data.copy(this.carry, base, off, cut);
          this.emit(this.carry.subarray(0, base + cut - off));
        } else {
          this.emit(data.subarray(off, cut));
        }
        off = cut;
      } else {
        data.copy(this.carry, base + off, off, n);
        this.pos = base + n;
        this.fp = fp;
        off = n;
      }
    }
  }

  finish(): void {
    if (this.pos > 0) this.emit(this.carry.subarray(0, this.pos));
  }

  private emit(chunk: Buffer): void {
    this.pos = 0;
    this.fp = 0;
    if (chunk.length > 0) this.onChunk(chunk);
  }
}

/** Chunk boundaries of a whole buffer (tests and tools). */
export function chunkBuffer(data: Buffer, params: ChunkerParams, gear: Uint32Array): Buffer[] {
  const out: Buffer[] = [];
  const c = new Chunker(params, gear, (ch) => out.push(Buffer.from(ch)));
  c.push(data);
  c.finish();
  return out;
}
