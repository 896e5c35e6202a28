// zstd compression on worker threads, each compressing synchronously. Node's asynchronous
// zstdCompress builds a stream per call and runs it on libuv's pool, where every call's zstd
// context is allocated in that thread's malloc arena and freed from the main thread: measured
// about 1.5 CPU-s of 8.5 in a 1 GB backup more than the same work done synchronously (arena locks,
// page faults, stream set-up; docs/PERFORMANCE.md). A worker thread keeps its own arena warm and
// still lets frames compress in parallel with the main thread's chunking and hashing.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import { CosmosBackupError } from '../errors.ts';

/** One compression request: `buf` is transferred both ways, so no bytes are copied. */
interface Request { id: number; buf: ArrayBuffer; offset: number; length: number; level: number }
type Reply = { id: number; buf: ArrayBuffer; out: ArrayBuffer; outOffset: number; outLength: number } | { id: number; buf: ArrayBuffer; error: string } | { stats: true; reused: number };

// Plain JavaScript, evaluated by each worker: a string (not a function's source) so that the
// bundler that builds the agent binary cannot rewrite its require() calls.
//
// Each thread keeps one zstd stream per level and ends a frame per request on it: zstd starts
// the next frame on the same context (with the input's size in its header, since each frame is
// given whole with ZSTD_e_end). zstdCompressSync builds a zlib stream and a zstd context per
// call; reusing them took about a fifth less CPU per frame (docs/PERFORMANCE.md, sixth set).
// Node has no public synchronous call for that, so this uses the stream's native handle; where
// it is missing (another Node), or a call does not finish a frame, zstdCompressSync does the work.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const C = zlib.constants;
// As zstdOptions() in compress-pool.ts, which this string cannot import.
const params = (level) => ({ [C.ZSTD_c_compressionLevel]: level, [C.ZSTD_c_windowLog]: workerData.windowLog });
const streams = new Map();
let scratch = Buffer.alloc(0);
let reused = 0;
function stream(level) {
  let z = streams.get(level);
  if (z === undefined) {
    z = zlib.createZstdCompress({ params: params(level) });
    // A failed call destroys the stream at once and emits 'error' later: that is checked below.
    z.on('error', () => {});
    const ok = z._handle && typeof z._handle.writeSync === 'function' && z._writeState instanceof Uint32Array && z._writeState.length >= 2;
    if (!ok) z = null;
    streams.set(level, z);
  }
  return z;
}
// One whole frame on the level's stream, or undefined (the stream is dropped) if that failed.
function compressReused(input, level) {
  const z = stream(level);
  if (!z) return undefined;
  // zstd's bound for one frame (ZSTD_COMPRESSBOUND) with room to spare: one call then finishes it.
  const bound = input.length + (input.length >> 7) + 1024;
  // Larger inputs (whole documents, not frames) are rare: not worth holding their size for good.
  if (bound > 1048576) return undefined;
  if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(bound);
  try {
    z._handle.writeSync(C.ZSTD_e_end, input, 0, input.length, scratch, 0, bound);
  } catch {
    z.destroy();
  }
  const outLeft = z._writeState[0];
  const inLeft = z._writeState[1];
  if (z.destroyed || inLeft !== 0 || outLeft === 0) {
    // Failed, or mid-frame: never reuse it.
    streams.delete(level);
    z.destroy();
    return undefined;
  }
  const out = Buffer.allocUnsafeSlow(bound - outLeft);
  scratch.copy(out, 0, 0, out.length);
  reused++;
  return out;
}
parentPort.on('message', (m) => {
  if (m.stats) { parentPort.postMessage({ stats: true, reused }); return; }
  try {
    const input = Buffer.from(m.buf, m.offset, m.length);
    // An exact buffer of its own: it moves to the main thread, which keeps it as it is.
    let out = compressReused(input, m.level);
    if (out === undefined) {
      out = zlib.zstdCompressSync(input, { pledgedSrcSize: m.length, chunkSize: Math.max(64, m.length >> 1), params: params(m.level) });
    }
    try {
      parentPort.postMessage({ id: m.id, buf: m.buf, out: out.buffer, outOffset: out.byteOffset, outLength: out.length }, [m.buf, out.buffer]);
    } catch {
      // Node's shared pool for small buffers cannot move: copy (zlib does not use it for outputs this size).
      const own = Buffer.allocUnsafeSlow(out.length);
      out.copy(own);
      parentPort.postMessage({ id: m.id, buf: m.buf, out: own.buffer, outOffset: 0, outLength: own.length }, [m.buf, own.buffer]);
    }
  } catch (e) {
    parentPort.postMessage({ id: m.id, buf: m.buf, error: String((e && e.message) || e) }, [m.buf]);
  }
});
`;

/**
 * A 128 KiB window fits the frames (zstd's default makes every call allocate and clear megabytes:
 * 3-4x slower); an output buffer of half the input holds anything that compresses 2x or better;
 * the pledged size goes into the frame header, so decompression allocates its output exactly.
 */
export const ZSTD_WINDOW_LOG = 17;
export function zstdOptions(length: number, level: number): object {
  const c = zlib.constants as unknown as Record<string, number>;
  return { pledgedSrcSize: length, chunkSize: Math.max(64, length >> 1), params: { [c.ZSTD_c_compressionLevel!]: level, [c.ZSTD_c_windowLog!]: ZSTD_WINDOW_LOG } };
}

/**
 * The thread's old generation, in MiB. When each frame went through zstdCompressSync, each left
 * a zlib stream's objects behind; uncapped, V8 let the thread's heap grow to 26 MiB in a 4 GB
 * backup before collecting it, and zlib memory released only by that collection kept the
 * thread's malloc arena growing too. Capped, the heap stays near 10 MiB and the backup's peak RSS
 * fell from 287-291 to 259-264 MiB (4 GB, the binary, two interleaved pairs). The reused stream
 * leaves far less behind (major collections on the thread in a 1 GB backup: 19 -> 3), and the
 * cap still bounds what the fallback path would. The thread keeps about 4 MiB alive (Node's own
 * modules; one message at a time); a thread that still ran out would stop, and the backup fail
 * clearly.
 */
const WORKER_OLD_SPACE_MB = 8;

interface Pending { resolve: (r: { out: Buffer; input: Buffer }) => void; reject: (e: Error) => void; slot: Slot; offset: number; length: number }
interface Slot { worker: Worker; inFlight: number; statsWaiters: ((reused: number) => void)[] }

/** Threads: one fewer than the CPUs (the main thread chunks and hashes), at least 1, at most 4. */
export function compressionThreads(cpus = availableParallelism()): number {
  return Math.max(1, Math.min(4, cpus - 1));
}

class CompressPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly size: number;

  constructor(size: number) { this.size = size; }

  /**
   * Compresses `length` bytes at `offset` of `buf`, which is transferred to a worker and back:
   * the caller must not touch it until the promise settles, and gets it back as `input`.
   */
  zstd(buf: ArrayBuffer, offset: number, length: number, level: number): Promise<{ out: Buffer; input: Buffer }> {
    const slot = this.pick();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const req: Request = { id, buf, offset, length, level };
      // Throws (nothing moved) for memory that cannot move, such as Node's pool for small buffers.
      slot.worker.postMessage(req, [buf]);
      this.pending.set(id, { resolve, reject, slot, offset, length });
      if (slot.inFlight++ === 0) slot.worker.ref();
    });
  }

  private pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.inFlight < best.inFlight) best = s;
    if (best && (best.inFlight === 0 || this.slots.length >= this.size)) return best;
    return this.spawn();
  }

  /**
   * Each running thread's V8 heap and the limit V8 enforces on it, in bytes, and how many frames
   * it compressed on a reused zstd stream (tests check the cap and that the fast path is taken).
   */
  async threadStatistics(): Promise<{ total: number; used: number; limit: number; reusedFrames: number }[]> {
    const slots = [...this.slots];
    for (const s of slots) s.worker.ref(); // an idle thread is unref'd: keep the process up for its answer
    try {
      return await Promise.all(slots.map(async (s) => {
        const reusedFrames = new Promise<number>((resolve) => {
          s.statsWaiters.push(resolve);
          s.worker.postMessage({ stats: true });
        });
        const h = await s.worker.getHeapStatistics();
        return { total: h.total_heap_size, used: h.used_heap_size, limit: h.heap_size_limit, reusedFrames: await reusedFrames };
      }));
    } finally {
      for (const s of slots) if (s.inFlight === 0) s.worker.unref();
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true, name: 'cosmos-backup zstd', workerData: { windowLog: ZSTD_WINDOW_LOG },
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: WORKER_OLD_SPACE_MB },
    });
    const slot: Slot = { worker, inFlight: 0, statsWaiters: [] };
    // Idle threads do not keep the process alive; a thread with work does (ref in zstd()).
    worker.unref();
    worker.on('message', (r: Reply) => {
      if ('stats' in r) slot.statsWaiters.shift()?.(r.reused);
      else this.settle(r);
    });
    const fail = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, p] of this.pending) {
        if (p.slot !== slot) continue;
        this.pending.delete(id);
        p.reject(new CosmosBackupError('INTERNAL', `a compression thread stopped (${why}); nothing it was compressing was stored: run the command again`));
      }
      for (const w of slot.statsWaiters.splice(0)) w(0);
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  private settle(r: Exclude<Reply, { stats: true }>): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (--p.slot.inFlight === 0) p.slot.worker.unref();
    if ('error' in r) p.reject(new CosmosBackupError('INTERNAL', `zstd compression failed: ${r.error}`));
    else p.resolve({ out: Buffer.from(r.out, r.outOffset, r.outLength), input: Buffer.from(r.buf, p.offset, p.length) });
  }
}

let pool: CompressPool | undefined;

/** The process-wide pool, started on first use. */
export function compressPool(): CompressPool {
  pool ??= new CompressPool(compressionThreads());
  return pool;
}
