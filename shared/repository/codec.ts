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
const zstdDecompress: AsyncCodec | undefined = hasZstd ? promisify(z.zstdDecompress as never) : undefined;
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
    // A 64 KiB window fits our frames; zstd's default window makes every call allocate and clear
    // megabytes, which measured 3-4x slower on the thread pool (scripts/bench-repo.ts).
    out = await zstdCompress(data, { chunkSize: 128 * 1024, params: { [c.ZSTD_c_compressionLevel!]: level, [c.ZSTD_c_windowLog!]: 16 } });
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
    case CODEC_ZSTD:
      if (!zstdDecompress) throw new Error('this runtime has no zstd: use Node 24 (the project pins it)');
      return compact(await zstdDecompress(data, { maxOutputLength: Math.max(expectedLength, 1), chunkSize: 128 * 1024 }));
    case CODEC_DEFLATE: return inflateRaw(data, { maxOutputLength: Math.max(expectedLength, 1) });
    default: throw new Error(`unknown codec ${codec}`);
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
