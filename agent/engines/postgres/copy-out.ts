// COPY ... TO STDOUT as a byte stream, for pg's Client.query(). Like pg-copy-streams' `to`, it
// takes the connection's socket over for the duration of the COPY and hands it back to pg at
// CopyDone or ErrorResponse. Unlike it, the CopyData payloads (one message per row) are moved
// together inside the buffer the socket delivered, and each socket read becomes one pushed
// buffer: no object per row. Per-row views and their garbage cost about 0.6 of 7.6-8.1 agent
// CPU-s in a 1 GB backup (docs/PERFORMANCE.md).
import { Readable } from 'node:stream';
import type pg from 'pg';
import { CosmosBackupError } from '../../../shared/errors.ts';

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

/** A pg submittable: `client.query(new CopyOut(sql))` streams the table's COPY text. */
export class CopyOut extends Readable implements pg.Submittable {
  readonly text: string;
  private readonly parser = new CopyOutParser();
  private connection: pg.Connection | undefined;
  private pgListener: ((b: Buffer) => void) | undefined;
  private readonly onData = (b: Buffer) => this.receive(b);
  private paused = false;

  constructor(text: string) {
    // A socket read is up to 64 KiB; room for several keeps the socket flowing while the
    // consumer works on one.
    super({ highWaterMark: 1 << 20 });
    this.text = text;
  }

  /** pg calls this when the query's turn comes; an Error returned (not thrown) fails the query. */
  submit(connection: pg.Connection): Error | undefined {
    this.connection = connection;
    const s = connection.stream;
    const listeners = s.listeners('data');
    if (listeners.length !== 1) return new CosmosBackupError('INTERNAL', `cannot take over the connection for COPY: ${listeners.length} data listeners`);
    this.pgListener = listeners[0] as (b: Buffer) => void;
    s.removeListener('data', this.pgListener);
    s.on('data', this.onData);
    connection.query(this.text);
    return undefined;
  }

  private receive(b: Buffer): void {
    let r: ReturnType<CopyOutParser['feed']>;
    try {
      r = this.parser.feed(b);
    } catch (e) {
      this.detach(undefined);
      this.destroy(e as Error);
      return;
    }
    if (r.length > 0 && !this.push(b.subarray(0, r.length)) && r.rest === undefined) {
      this.paused = true;
      this.connection!.stream.pause();
    }
    if (r.rest !== undefined) {
      this.detach(r.rest);
      if (!r.error) this.push(null);
    }
  }

  /** Gives the socket back to pg, with the bytes after COPY mode. */
  private detach(rest: Buffer | undefined): void {
    const s = this.connection!.stream;
    s.removeListener('data', this.onData);
    s.on('data', this.pgListener!);
    // Only ever called from receive(): the socket is flowing (a paused one emits no data), so
    // pg's listener goes on receiving.
    if (rest?.length) this.pgListener!(rest);
  }

  override _read(): void {
    if (this.paused) {
      this.paused = false;
      this.connection!.stream.resume();
    }
  }

  // pg calls these as for any query.
  handleError(err: Error): void { this.destroy(err); }
  handleCommandComplete(): void { /* the stream ended at CopyDone; nothing reads the row count */ }
  handleReadyForQuery(): void { /* likewise */ }
}
