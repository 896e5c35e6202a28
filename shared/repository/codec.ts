// Per-chunk compression. zstd where the runtime's zlib has it (Node >= 22.15 / 23.8), deflate
// otherwise; the codec of every blob is recorded so any reader knows how to expand it.
import zlib from 'node:zlib';
import { promisify } from 'node:util';

export const CODEC_NONE = 0;
export const CODEC_ZSTD = 1;
export const CODEC_DEFLATE = 2;
export type Codec = typeof CODEC_NONE | typeof CODEC_ZSTD | typeof CODEC_DEFLATE;

const z = zlib as unknown as Record<string, unknown>;
export const hasZstd = typeof z.zstdCompress === 'function';

type AsyncCodec = (buf: Uint8Array, opts?: object) => Promise<Buffer>;
const zstdCompress: AsyncCodec | undefined = hasZstd ? promisify(z.zstdCompress as never) : undefined;
const zstdDecompressSync = hasZstd ? (z.zstdDecompressSync as (buf: Uint8Array, opts?: object) => Buffer) : undefined;
const deflateRaw = promisify(zlib.deflateRaw) as AsyncCodec;
const inflateRaw = promisify(zlib.inflateRaw) as AsyncCodec;

export const preferredCodec: Codec = hasZstd ? CODEC_ZSTD : CODEC_DEFLATE;

/**
 * Compresses on libuv's thread pool (so several chunks compress in parallel). Returns the raw
 * bytes with CODEC_NONE when compression does not save at least 1/32 of the size.
 */
export async function compress(data: Buffer, codec: Codec = preferredCodec, level = 1): Promise<{ codec: Codec; data: Buffer }> {
  if (codec === CODEC_NONE || data.length < 64) return { codec: CODEC_NONE, data };
  let out: Buffer;
  if (codec === CODEC_ZSTD && zstdCompress) {
    const c = zlib.constants as unknown as Record<string, number>;
    // A 128 KiB window fits our frames; zstd's default window makes every call allocate and clear
    // megabytes, which measured 3-4x slower on the thread pool (scripts/bench-repo.ts).
    // An output buffer of half the input holds anything that compresses 2x or better, instead
    // of a fresh 128 KiB per frame; the pledged size goes into the frame header, which lets
    // decompress() allocate its output exactly.
    out = await zstdCompress(data, { pledgedSrcSize: data.length, chunkSize: Math.max(MIN_CHUNK, data.length >> 1), params: { [c.ZSTD_c_compressionLevel!]: level, [c.ZSTD_c_windowLog!]: 17 } });
  } else {
    out = await deflateRaw(data, { level: Math.min(level, 9) });
    codec = CODEC_DEFLATE;
  }
  if (out.length >= data.length - (data.length >> 5)) return { codec: CODEC_NONE, data };
  return { codec, data: compact(out) };
}

export async function decompress(codec: number, data: Buffer, expectedLength: number): Promise<Buffer> {
  switch (codec) {
    case CODEC_NONE: return data;
    case CODEC_ZSTD: {
      if (!zstdDecompressSync) throw new Error('this runtime has no zstd: use Node 24 (the project pins it)');
      // Sized from the frame header when it records the content size (ours always do), so the
      // result is one exact buffer: no copy, no oversized allocation.
      const size = zstdContentSize(data);
      const chunkSize = size !== undefined && size <= expectedLength ? size + MIN_CHUNK : 128 * 1024;
      // On this thread: decoding a 128 KiB frame takes well under a millisecond, about what a
      // hand-off to the thread pool costs in CPU (measured: 40 % less CPU per frame in all).
      return compact(zstdDecompressSync!(data, { maxOutputLength: Math.max(expectedLength, 1), chunkSize }));
    }
    case CODEC_DEFLATE: return inflateRaw(data, { maxOutputLength: Math.max(expectedLength, 1) });
    default: throw new Error(`unknown codec ${codec}`);
  }
}

/** zlib's smallest output buffer */
const MIN_CHUNK = 64;

/**
 * The decompressed size a zstd frame header declares (RFC 8878, 3.1.1.1), or undefined when the
 * header does not carry it or is not a zstd frame. Pure; a wrong value only costs a reallocation,
 * since zlib still bounds the output by maxOutputLength.
 */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  if (frame.length < 6 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) return undefined;
  const fhd = frame[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const dictIdBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (frame.length < at + fcsBytes) return undefined;
  const b = Buffer.from(frame.buffer, frame.byteOffset + at, fcsBytes);
  switch (fcsBytes) {
    case 1: return b[0]!;
    case 2: return b.readUInt16LE(0) + 256;
    case 4: return b.readUInt32LE(0);
    default: {
      const v = b.readBigUInt64LE(0);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
    }
  }
}

/** zlib may hand back a small view of a large output buffer; copy it so frames held in packs or
 * read-ahead batches do not pin 128 KiB each (measured: +100 MiB of RSS during a backup). */
function compact(b: Buffer): Buffer {
  if (b.buffer.byteLength <= b.length + 4096) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}
