// A plain TCP (or Unix) socket for pg that reads into reused 64 KiB slabs (net.Socket's `onread`)
// instead of a fresh buffer per read. A backup reads every byte of the database through these
// sockets: a new buffer per read is about 16 000 per GB, each one external memory that only a
// major GC frees once the chunker's frames have held it a while. While a COPY owns the
// connection (copy-out.ts) it takes the slabs themselves and gives each back when written; the
// rest of the time every read is copied into a buffer of its own for pg, whose parser keeps
// references to partial messages.
import net from 'node:net';
import { BufferPool } from '../../../shared/buffer-pool.ts';

const SLAB = 64 * 1024;
/** Slabs out at once (the one waiting for the next read included) before a COPY pauses the
 * socket: reads are often much smaller than a slab, so the consumer's high-water mark in bytes
 * would not bound them. */
const MAX_OUT = 16;

/** Receives the bytes of one read in `slab` (`data` is its filled part); false pauses the socket. */
export type SlabRoute = (data: Buffer, slab: Buffer) => boolean;

const readers = new WeakMap<object, SlabReader>();

export class SlabReader {
  readonly socket: net.Socket;
  /** set while a COPY owns the connection */
  route: SlabRoute | undefined;
  /** the socket's slabs: at most MAX_OUT + 1 are ever allocated (bounded memory) */
  readonly slabs = new BufferPool(SLAB, MAX_OUT + 1);
  private out = 0;

  constructor() {
    this.socket = new net.Socket({ onread: { buffer: () => this.take(), callback: (n, buf) => this.read(n, buf as Buffer) } });
    readers.set(this.socket, this);
  }

  /** As many slabs are out as the socket should hold: a COPY pauses until one comes back. */
  get full(): boolean {
    return this.out >= MAX_OUT;
  }

  private take(): Buffer {
    this.out++;
    return this.slabs.take();
  }

  /** Gives a slab back once nothing refers to its bytes any more. */
  release(slab: Buffer): void {
    this.out--;
    this.slabs.give(slab);
  }

  private read(n: number, slab: Buffer): boolean {
    const data = slab.subarray(0, n);
    if (this.route) return this.route(data, slab);
    const own = Buffer.from(data);
    this.release(slab);
    // pg listens for 'data' (its startup, queries, and the end of a COPY); onread sockets emit none.
    this.socket.emit('data', own);
    return true;
  }
}

/** The reader behind a socket made by `slabSocket`, if it is one. */
export function slabReaderOf(stream: object): SlabReader | undefined {
  return readers.get(stream);
}

/** For pg.ClientConfig's `stream`: a new slab-reading socket per connection. */
export function slabSocket(): net.Socket {
  return new SlabReader().socket;
}
