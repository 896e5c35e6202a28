// The COPY-out message parser (pure): CopyData payloads come out in order and nothing else does,
// wherever the socket's reads split a message (header or payload); at CopyDone or an
// ErrorResponse, exactly the bytes pg must read next are handed back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CopyOutParser } from '../../agent/engines/postgres/copy-out.ts';
import { CosmosBackupError } from '../../shared/errors.ts';

function msg(code: string, payload: Buffer | string): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const h = Buffer.alloc(5);
  h[0] = code.charCodeAt(0);
  h.writeUInt32BE(p.length + 4, 1);
  return Buffer.concat([h, p]);
}

const rows = ['1\tfirst\n', '2\t\\N\n', '3\t' + 'é'.repeat(300) + '\n', '4\t\n', '5\tlast row\n'];
const copyOutResponse = msg('H', Buffer.from([0, 0, 2, 0, 0, 0, 0]));
const afterCopy = Buffer.concat([msg('C', 'COPY 5\0'), msg('Z', 'I')]);

/** Feeds `wire` cut into pieces of the given sizes (cycled); returns what the parser gave back. */
function run(wire: Buffer, sizes: number[]): { data: string; pg: Buffer; error: boolean } {
  const out: Buffer[] = [];
  const p = new CopyOutParser();
  let at = 0;
  for (let k = 0; at < wire.length; k++) {
    const n = sizes[k % sizes.length]!;
    // A fresh buffer per read, as a socket delivers: the parser moves bytes inside it.
    const piece = Buffer.from(wire.subarray(at, at + n));
    at += n;
    const r = p.feed(piece);
    out.push(Buffer.from(piece.subarray(0, r.length)));
    if (r.rest !== undefined) return { data: Buffer.concat(out).toString(), pg: Buffer.concat([r.rest, wire.subarray(at)]), error: r.error === true };
  }
  throw new Error('COPY never ended');
}

test('CopyData payloads come out in order, other messages do not, however the reads split them', () => {
  const wire = Buffer.concat([
    copyOutResponse, msg('d', rows[0]!), msg('N', 'SNOTICE\0Mwatch out\0\0'), msg('d', rows[1]!), msg('S', 'TimeZone\0UTC\0'),
    msg('d', rows[2]!), msg('A', Buffer.alloc(12, 1)), msg('d', rows[3]!), msg('d', rows[4]!), msg('c', ''), afterCopy,
  ]);
  const splits = [[wire.length], [1], [2], [3], [4], [5], [6], [7], [64], [1, 5, 2, 9], [4, 1, 300]];
  for (const sizes of splits) {
    const r = run(wire, sizes);
    assert.equal(r.data, rows.join(''), `rows with reads of ${sizes.join(',')} bytes`);
    assert.ok(r.pg.equals(afterCopy), `pg reads CommandComplete and ReadyForQuery (reads of ${sizes.join(',')})`);
    assert.equal(r.error, false);
  }
});

test('an ErrorResponse ends COPY mode and goes to pg whole, even when its header was split', () => {
  const error = Buffer.concat([msg('E', 'SERROR\0C57P01\0Mterminating connection\0\0'), msg('Z', 'I')]);
  const wire = Buffer.concat([copyOutResponse, msg('d', rows[0]!), msg('d', rows[1]!), error]);
  for (let split = 1; split < wire.length; split++) {
    // two reads, cut at every byte (so also inside the ErrorResponse's header)
    const r = run(wire, [split, wire.length]);
    assert.equal(r.data, rows[0]! + rows[1]!, `rows before the error (cut at ${split})`);
    assert.ok(r.pg.equals(error), `pg gets the whole ErrorResponse (cut at ${split})`);
    assert.equal(r.error, true);
  }
  assert.ok(run(wire, [3]).pg.equals(error), 'reads of 3 bytes');
});

test('a malformed message length is an error, not a hang or a wrong stream', () => {
  const bad = Buffer.concat([copyOutResponse, msg('d', 'ok\n'), Buffer.from([0x64, 0, 0, 0, 2])]);
  assert.throws(() => run(bad, [bad.length]), (e: unknown) => e instanceof CosmosBackupError && /malformed message/.test(e.message));
});
