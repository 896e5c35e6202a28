// The stand-in's handshake, authentication and wire framing, through the official driver and
// through hand-built OP_QUERY / OP_MSG frames.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { BSON } from 'bson';
import { MongoClient, MongoServerError } from 'mongodb';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';

const servers: MongoStandIn[] = [];
after(async () => { await Promise.all(servers.map((s) => s.stop())); });

async function server(opts: Parameters<typeof startMongoServer>[0] = {}): Promise<MongoStandIn> {
  const s = await startMongoServer(opts);
  servers.push(s);
  return s;
}

/** Sends one framed message and resolves with the first complete answer frame. */
function roundTrip(port: number, frame: Buffer, expectReply = true): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
        sock.destroy();
        resolve(buf.subarray(0, buf.readInt32LE(0)));
      }
    });
    sock.write(frame, () => {
      if (!expectReply) setTimeout(() => { sock.destroy(); resolve(undefined); }, 200);
    });
  });
}

function opQuery(ns: string, query: object): Buffer {
  const q = Buffer.from(BSON.serialize(query));
  const name = Buffer.from(ns + '\0', 'utf8');
  const head = Buffer.alloc(20);
  const tail = Buffer.alloc(8);
  tail.writeInt32LE(0, 0);
  tail.writeInt32LE(-1, 4);
  const total = head.length + name.length + tail.length + q.length;
  head.writeInt32LE(total, 0);
  head.writeInt32LE(7, 4);
  head.writeInt32LE(2004, 12);
  return Buffer.concat([head, name, tail, q]);
}

function opMsg(flags: number, body: object, sequence?: { id: string; docs: object[] }, checksum = false): Buffer {
  const parts: Buffer[] = [Buffer.from([0]), Buffer.from(BSON.serialize(body))];
  if (sequence) {
    const docs = sequence.docs.map((d) => Buffer.from(BSON.serialize(d)));
    const id = Buffer.from(sequence.id + '\0', 'utf8');
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + id.length + docs.reduce((n, d) => n + d.length, 0), 0);
    parts.push(Buffer.from([1]), size, id, ...docs);
  }
  const head = Buffer.alloc(20);
  const crc = checksum ? Buffer.alloc(4) : Buffer.alloc(0); // the stand-in does not verify it
  const total = 20 + parts.reduce((n, p) => n + p.length, 0) + crc.length;
  head.writeInt32LE(total, 0);
  head.writeInt32LE(9, 4);
  head.writeInt32LE(2013, 12);
  head.writeUInt32LE(flags | (checksum ? 1 : 0), 16);
  return Buffer.concat([head, ...parts, crc]);
}

function opMsgBody(reply: Buffer): Record<string, any> {
  assert.equal(reply.readInt32LE(12), 2013);
  assert.equal(reply[20], 0);
  return BSON.deserialize(reply.subarray(21));
}

test('the driver connects with SCRAM-SHA-256 and runs commands', async () => {
  const s = await server({ users: [{ user: 'backup', password: 'p@ss:w/rd' }] });
  const client = new MongoClient(s.url('app'));
  try {
    await client.connect();
    const status = await client.db('admin').command({ connectionStatus: 1 });
    assert.deepEqual(status.authInfo.authenticatedUsers, [{ user: 'backup', db: 'admin' }]);
    assert.equal((await client.db('admin').command({ ping: 1 })).ok, 1);
    const info = await client.db('admin').command({ buildInfo: 1 });
    assert.match(info.version, /^7\./);
  } finally {
    await client.close();
  }
});

test('a wrong password fails with AuthenticationFailed (18)', async () => {
  const s = await server({ users: [{ user: 'backup', password: 'right' }] });
  const client = new MongoClient(s.url('app', { user: 'backup', pass: 'wrong' }), { serverSelectionTimeoutMS: 3000 });
  await assert.rejects(client.connect(), (e: unknown) => e instanceof MongoServerError && e.code === 18 && /Authentication failed/.test(e.message));
  await client.close();
  const unknown = new MongoClient(s.url('app', { user: 'nobody', pass: 'right' }), { serverSelectionTimeoutMS: 3000 });
  await assert.rejects(unknown.connect(), (e: unknown) => e instanceof MongoServerError && e.code === 18);
  await unknown.close();
});

test('users of another authentication database authenticate against it', async () => {
  const s = await server({ users: [{ user: 'app', password: 'secret', db: 'appdb' }] });
  const ok = new MongoClient(s.url('appdb'));
  await ok.connect();
  assert.equal((await ok.db('appdb').command({ ping: 1 })).ok, 1);
  await ok.close();
  const wrongSource = new MongoClient(s.url('appdb', { user: 'app', pass: 'secret', authSource: 'admin' }), { serverSelectionTimeoutMS: 3000 });
  await assert.rejects(wrongSource.connect(), (e: unknown) => e instanceof MongoServerError && e.code === 18);
  await wrongSource.close();
});

test('without credentials, commands other than the handshake are Unauthorized (13)', async () => {
  const s = await server();
  const client = new MongoClient(s.url('app', null));
  try {
    await client.connect();
    await assert.rejects(client.db('app').collection<any>('c').findOne({}), (e: unknown) => e instanceof MongoServerError && e.code === 13);
  } finally {
    await client.close();
  }
});

test('unauthenticated mode accepts every command', async () => {
  const s = await server({ auth: false });
  assert.equal(s.url('x'), `mongodb://127.0.0.1:${s.port}/x`);
  const client = new MongoClient(s.url('x'));
  try {
    await client.db('x').collection<any>('c').insertOne({ _id: 1 } as any);
    assert.equal(await client.db('x').collection<any>('c').countDocuments(), 1);
  } finally {
    await client.close();
  }
});

test('unknown commands fail with CommandNotFound (59)', async () => {
  const s = await server();
  const client = new MongoClient(s.url());
  try {
    await assert.rejects(client.db('x').command({ frobnicate: 1 }),
      (e: unknown) => e instanceof MongoServerError && e.code === 59 && e.codeName === 'CommandNotFound' && /frobnicate/.test(e.message));
  } finally {
    await client.close();
  }
});

test('legacy OP_QUERY isMaster gets an OP_REPLY advertising a standalone 7.0 server', async () => {
  const s = await server();
  const reply = (await roundTrip(s.port, opQuery('admin.$cmd', { isMaster: 1, helloOk: true })))!;
  assert.equal(reply.readInt32LE(8), 7, 'responseTo is the request id');
  assert.equal(reply.readInt32LE(12), 1, 'OP_REPLY');
  assert.equal(reply.readInt32LE(32), 1, 'one document');
  const doc = BSON.deserialize(reply.subarray(36));
  assert.equal(doc.ismaster, true);
  assert.equal(doc.helloOk, true);
  assert.equal(doc.maxWireVersion, 21);
  assert.equal(doc.maxBsonObjectSize, 16777216);
  assert.equal(doc.maxMessageSizeBytes, 48000000);
  assert.equal(doc.maxWriteBatchSize, 100000);
  assert.equal(doc.logicalSessionTimeoutMinutes, 30);
  assert.equal(doc.setName, undefined, 'not a replica set');
  const other = (await roundTrip(s.port, opQuery('admin.$cmd', { find: 'c' })))!;
  assert.equal(BSON.deserialize(other.subarray(36)).code, 352);
});

test('OP_MSG reads kind-1 document sequences, skips the checksum and honours moreToCome', async () => {
  const s = await server({ auth: false });
  const body = { insert: 'c', $db: 'wire', ordered: true };
  const seq = { id: 'documents', docs: [{ _id: 1, a: 'x' }, { _id: 2, a: 'y' }] };
  const reply = opMsgBody((await roundTrip(s.port, opMsg(0, body, seq, true)))!);
  assert.equal(reply.n, 2);
  // moreToCome: the server must not answer (w:0 write)
  const none = await roundTrip(s.port, opMsg(2, { insert: 'c', $db: 'wire' }, { id: 'documents', docs: [{ _id: 3 }] }), false);
  assert.equal(none, undefined);
  const count = opMsgBody((await roundTrip(s.port, opMsg(0, { count: 'c', $db: 'wire' })))!);
  assert.equal(count.n, 3);
});

test('uniqueDbName gives distinct names', () => {
  assert.notEqual(uniqueDbName(), uniqueDbName());
});
