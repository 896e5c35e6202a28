// MongoDB wire-protocol framing for the stand-in: splits a TCP stream into messages, parses
// OP_MSG (2013) and OP_QUERY (2004) requests, and frames OP_MSG / OP_REPLY (1) answers.
import type { RawValue } from './raw-bson.ts';
import { elements } from './raw-bson.ts';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

export const MSG_CHECKSUM_PRESENT = 1;
export const MSG_MORE_TO_COME = 2;
export const MSG_EXHAUST_ALLOWED = 1 << 16;

export interface Request {
  requestId: number;
  opCode: number;
  /** OP_MSG flag bits (0 for OP_QUERY). */
  flags: number;
  /** The command document (kind-0 section, or the OP_QUERY query unwrapped from $query). */
  body: Buffer;
  /** Kind-1 document sequences by identifier, each document's exact bytes. */
  sequences: Map<string, Buffer[]>;
  /** OP_QUERY only: the namespace the query was sent to (`db.$cmd`). */
  fullCollectionName?: string;
}

export class ProtocolError extends Error {}

/** Accumulates socket chunks and yields complete messages without quadratic copying. */
export class MessageSplitter {
  private chunks: Buffer[] = [];
  private total = 0;
  private readonly maxMessageSize: number;

  constructor(maxMessageSize: number) {
    this.maxMessageSize = maxMessageSize;
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.total += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.total < 4) break;
      const first = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten();
      const len = first.readInt32LE(0);
      if (len < 16 || len > this.maxMessageSize) throw new ProtocolError(`invalid message length ${len}`);
      if (this.total < len) break;
      const all = this.flatten();
      out.push(all.subarray(0, len));
      const rest = all.subarray(len);
      this.chunks = rest.length ? [rest] : [];
      this.total = rest.length;
    }
    return out;
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.total)];
    return this.chunks[0]!;
  }
}

function cstring(buf: Buffer, off: number): [string, number] {
  const end = buf.indexOf(0, off);
  if (end < 0) throw new ProtocolError('unterminated cstring');
  return [buf.toString('utf8', off, end), end + 1];
}

/** Parses one complete message (header included). */
export function parseRequest(msg: Buffer): Request {
  const requestId = msg.readInt32LE(4);
  const opCode = msg.readInt32LE(12);
  if (opCode === OP_MSG) {
    const flags = msg.readUInt32LE(16);
    // Unknown required bits (0-15) must make the server fail, per the OP_MSG spec.
    if ((flags & 0xfffc) !== 0) throw new ProtocolError(`unsupported OP_MSG flag bits ${flags.toString(16)}`);
    const end = msg.length - (flags & MSG_CHECKSUM_PRESENT ? 4 : 0);
    let p = 20;
    let body: Buffer | undefined;
    const sequences = new Map<string, Buffer[]>();
    while (p < end) {
      const kind = msg[p]!;
      p += 1;
      if (kind === 0) {
        const size = msg.readInt32LE(p);
        if (body) throw new ProtocolError('OP_MSG with two body sections');
        body = msg.subarray(p, p + size);
        p += size;
      } else if (kind === 1) {
        const size = msg.readInt32LE(p);
        const stop = p + size;
        const [id, q] = cstring(msg, p + 4);
        const docs: Buffer[] = [];
        let d = q;
        while (d < stop) {
          const dsize = msg.readInt32LE(d);
          // Copied so a stored document does not pin the whole request buffer.
          docs.push(Buffer.from(msg.subarray(d, d + dsize)));
          d += dsize;
        }
        sequences.set(id, docs);
        p = stop;
      } else {
        throw new ProtocolError(`unsupported OP_MSG section kind ${kind}`);
      }
    }
    if (!body) throw new ProtocolError('OP_MSG without a body section');
    return { requestId, opCode, flags, body, sequences };
  }
  if (opCode === OP_QUERY) {
    const [fullCollectionName, q] = cstring(msg, 20);
    const qsize = msg.readInt32LE(q + 8);
    let body = msg.subarray(q + 8, q + 8 + qsize);
    // Drivers may wrap the command as {$query: {...}, $readPreference: ...}.
    const wrapped = elements(body).find((e) => e.name === '$query' || e.name === 'query');
    if (wrapped && wrapped.type === 0x03 && elements(body)[0]?.name === wrapped.name) body = body.subarray(wrapped.valueStart, wrapped.end);
    return { requestId, opCode, flags: 0, body, sequences: new Map(), fullCollectionName };
  }
  throw new ProtocolError(`unsupported opcode ${opCode}`);
}

/** Frames an OP_MSG reply whose body is `body` (chunks, written without concatenation). */
export function frameOpMsg(requestId: number, responseTo: number, body: RawValue, flags = 0): Buffer[] {
  const head = Buffer.allocUnsafe(21);
  head.writeInt32LE(21 + body.size, 0);
  head.writeInt32LE(requestId, 4);
  head.writeInt32LE(responseTo, 8);
  head.writeInt32LE(OP_MSG, 12);
  head.writeUInt32LE(flags, 16);
  head[20] = 0;
  return [head, ...body.chunks];
}

/** Frames an OP_REPLY carrying one document (the legacy handshake answer). */
export function frameOpReply(requestId: number, responseTo: number, doc: RawValue): Buffer[] {
  const head = Buffer.alloc(36);
  head.writeInt32LE(36 + doc.size, 0);
  head.writeInt32LE(requestId, 4);
  head.writeInt32LE(responseTo, 8);
  head.writeInt32LE(OP_REPLY, 12);
  head.writeInt32LE(8, 16); // responseFlags: AwaitCapable, as mongod sets it
  // cursorID (int64) 0, startingFrom 0 are already zero
  head.writeInt32LE(1, 32); // numberReturned
  return [head, ...doc.chunks];
}
