// COPY ... TO STDOUT written straight into a Writable, for pg's Client.query(). Like
// pg-copy-streams' `to`, it takes the connection's socket over for the duration of the COPY and
// hands it back to pg at CopyDone or ErrorResponse. Unlike it, the CopyData payloads (one message
// per row) are moved together inside the buffer the socket delivered, and each socket read
// becomes one write: no object per row (per-row views and their garbage cost about 0.6 of
// 7.6-8.1 agent CPU-s in a 1 GB backup, docs/PERFORMANCE.md). On a slab socket (slab-socket.ts)
// the socket's own reused buffer is written, and handed back when the write completes.
import type { Writable } from 'node:stream';
import type pg from 'pg';
import { CosmosBackupError } from '../../../shared/errors.ts';
import { slabReaderOf, type SlabReader } from './slab-socket.ts';

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const COPY_OUT_RESPONSE = 0x48; // H
// May come between CopyData messages (protocol-flow, "COPY Operations"); skipped as pg-copy-streams does.
const NOTICE = 0x4e; // N
const PARAMETER_STATUS = 0x53; // S
const NOTIFICATION = 0x41; // A

const HEADER = 5;

/**
 * Splits a stream of backend messages into the CopyData payload bytes (moved to the front of each
 * buffer it is given) and the point where COPY mode ends. Pure and incremental: a message header
 * or payload may straddle buffers. Exported for tests.
 */
export class CopyOutParser {
  /** bytes of the current message's payload not yet seen */
  private remaining = 0;
  private code = 0;
  /** a message header split across buffers */
  private readonly header = Buffer.alloc(HEADER);
  private headerLength = 0;

  /**
   * Moves the CopyData payload bytes of `b` to its front, in order. Returns how many there are,
   * and where COPY mode ended: `rest` is what follows, for pg's own parser (from the start of an
   * ErrorResponse, or after CopyDone), undefined while COPY goes on.
   */
  feed(b: Buffer): { length: number; rest?: Buffer; error?: boolean } {
    const n = b.length;
    let w = 0;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - i);
        if (this.code === COPY_DATA) {
          if (w !== i) b.copyWithin(w, i, i + take);
          w += take;
        }
        i += take;
        this.remaining -= take;
        continue;
      }
      let code: number;
      let len: number;
      const start = i;
      if (this.headerLength === 0 && n - i >= HEADER) {
        code = b[i]!;
        len = b.readUInt32BE(i + 1);
        i += HEADER;
      } else {
        const take = Math.min(HEADER - this.headerLength, n - i);
        b.copy(this.header, this.headerLength, i, i + take);
        this.headerLength += take;
        i += take;
        if (this.headerLength < HEADER) break;
        code = this.header[0]!;
        len = this.header.readUInt32BE(1);
      }
      const split = this.headerLength > 0 ? this.header.subarray(0, this.headerLength) : undefined;
      this.headerLength = 0;
      if (len < 4) throw new CosmosBackupError('DATABASE_ERROR', `the server sent a malformed message during COPY (length ${len})`);
      this.code = code;
      this.remaining = len - 4;
      switch (code) {
        case COPY_DATA: case COPY_OUT_RESPONSE: case NOTICE: case PARAMETER_STATUS: case NOTIFICATION:
          continue;
        case COPY_DONE:
          // The payload of CopyDone is empty; CommandComplete and ReadyForQuery follow, for pg.
          return { length: w, rest: b.subarray(i + this.remaining) };
        default: {
          // ErrorResponse (or anything unexpected) ends COPY mode: pg reads it whole, header included.
          const from = split ? Buffer.concat([split, b.subarray(i)]) : b.subarray(start);
          return { length: w, rest: from, error: true };
        }
      }
    }
    return { length: w };
  }
}

/**
 * A pg submittable: `client.query(copy)` writes the table's COPY text into `sink` (without ending
 * it); `copy.done` settles at CopyDone, or with the first error of the server, the connection or
 * the sink. The sink must not keep the buffers it is given past a write's callback.
 */
export class CopyOut implements pg.Submittable {
  readonly text: string;
  readonly done: Promise<void>;
  private readonly sink: Writable;
  private readonly parser = new CopyOutParser();
  private connection: pg.Connection | undefined;
  private reader: SlabReader | undefined;
  private pgListener: ((b: Buffer) => void) | undefined;
  private readonly onData = (b: Buffer) => { if (!this.receive(b, undefined)) this.connection!.stream.pause(); };
  private readonly onSinkError = (e: Error) => this.settle(e);
  private settled = false;
  private paused = false;
  private waitingDrain = false;
  private readonly onDrain = () => {
    this.waitingDrain = false;
    this.maybeResume();
  };
  private resolve!: () => void;
  private reject!: (e: unknown) => void;

  constructor(text: string, sink: Writable) {
    this.text = text;
    this.sink = sink;
    this.done = new Promise((res, rej) => { this.resolve = res; this.reject = rej; });
    this.done.catch(() => undefined);
  }

  /** pg calls this when the query's turn comes; an Error returned (not thrown) fails the query. */
  submit(connection: pg.Connection): Error | undefined {
    this.connection = connection;
    const s = connection.stream;
    this.reader = slabReaderOf(s);
    if (this.reader) {
      this.reader.route = (data, slab) => this.receive(data, slab);
    } else {
      // A socket pg made (TLS): its 'data' listener is swapped for ours.
      const listeners = s.listeners('data');
      if (listeners.length !== 1) return new CosmosBackupError('INTERNAL', `cannot take over the connection for COPY: ${listeners.length} data listeners`);
      this.pgListener = listeners[0] as (b: Buffer) => void;
      s.removeListener('data', this.pgListener);
      s.on('data', this.onData);
    }
    this.sink.on('error', this.onSinkError);
    connection.query(this.text);
    return undefined;
  }

  /** One socket read (in `slab` when it is a slab socket's); returns false to pause the socket. */
  private receive(b: Buffer, slab: Buffer | undefined): boolean {
    const release = slab ? () => { this.reader!.release(slab); this.maybeResume(); } : undefined;
    if (this.settled) {
      // Failed: the caller closes the connection; what still arrives is dropped.
      release?.();
      return true;
    }
    let r: ReturnType<CopyOutParser['feed']>;
    try {
      r = this.parser.feed(b);
    } catch (e) {
      release?.();
      this.detach(undefined);
      this.settle(e);
      return true;
    }
    if (r.length > 0) this.sink.write(b.subarray(0, r.length), release);
    else release?.();
    if (r.rest !== undefined) {
      // pg's parser may keep the bytes it is given: never a slab, which goes back to the pool.
      this.detach(slab && r.rest.length ? Buffer.from(r.rest) : r.rest);
      if (!r.error) this.settle();
      return true;
    }
    if (this.sink.writableNeedDrain || this.reader?.full) {
      this.paused = true;
      if (this.sink.writableNeedDrain && !this.waitingDrain) { this.waitingDrain = true; this.sink.once('drain', this.onDrain); }
      return false;
    }
    return true;
  }

  /** Resumes a paused socket once the sink has drained and slabs have come back. */
  private maybeResume(): void {
    if (!this.paused || this.settled || this.sink.writableNeedDrain || this.reader?.full) return;
    this.paused = false;
    this.connection!.stream.resume();
  }

  /** Gives the socket back to pg, with the bytes after COPY mode. */
  private detach(rest: Buffer | undefined): void {
    if (this.reader) {
      this.reader.route = undefined;
    } else {
      const s = this.connection!.stream;
      s.removeListener('data', this.onData);
      s.on('data', this.pgListener!);
    }
    // Only ever called from receive(): the socket is flowing (a paused one reads nothing), so pg
    // goes on receiving.
    if (rest?.length) this.connection!.stream.emit('data', rest);
  }

  /** Settles `done` once: resolved at CopyDone, rejected with the first error. */
  private settle(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.sink.off('error', this.onSinkError);
    if (error === undefined) this.resolve();
    else this.reject(error);
  }

  // pg calls these as for any query.
  handleError(err: Error): void {
    if (this.reader) this.reader.route = undefined;
    this.settle(err);
  }
  handleCommandComplete(): void { /* the COPY ended at CopyDone; nothing reads the row count */ }
  handleReadyForQuery(): void { /* likewise */ }
}
