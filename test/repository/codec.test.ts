// Frame compression (pure): zstd frames carry their content size, which decompress() uses to
// size its output exactly; odd or foreign headers give undefined rather than a wrong size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { compress, decompress, zstdContentSize, CODEC_ZSTD } from '../../shared/repository/codec.ts';

test('zstd frames record their content size, for every size class of the header field', async () => {
  for (const n of [100, 255, 256, 300, 65_535, 65_791, 65_792, 131_072, 1_000_000]) {
    const plain = Buffer.from('row\t' + 'x'.repeat(n - 4));
    const c = await compress(plain);
    assert.equal(c.codec, CODEC_ZSTD, `${n} bytes compress`);
    assert.equal(zstdContentSize(c.data), n, `header of a ${n}-byte frame`);
    const back = await decompress(c.codec, c.data, 16 * 1024 * 1024);
    assert.ok(back.equals(plain), `${n} bytes round-trip`);
    // Frames live on in read-ahead batches: the output must not pin a larger buffer.
    assert.ok(back.buffer.byteLength <= n + 64, `the ${n}-byte output holds no oversized buffer (${back.buffer.byteLength})`);
  }
  // A frame written without a pledged size (as zstd's streaming API does) has no size field.
  const streamed = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    zlib.createZstdCompress().on('data', (d: Buffer) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject).end(Buffer.from('a'.repeat(5000)));
  });
  assert.equal(zstdContentSize(streamed), undefined);
  assert.equal((await decompress(CODEC_ZSTD, streamed, 16 * 1024 * 1024)).toString(), 'a'.repeat(5000), 'and still decodes');
  assert.equal(zstdContentSize(Buffer.from('not a zstd frame')), undefined);
  assert.equal(zstdContentSize(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), undefined, 'truncated header');
});
