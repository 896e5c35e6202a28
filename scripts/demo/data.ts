// The demo's databases: what `npm run demo` puts into PostgreSQL and the MongoDB stand-in, the
// small change between its two backups, and the fidelity check that compares a restored database
// with its source (the demo's own reading, independent of what the worker reports).
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Binary, Decimal128, MongoClient, ObjectId } from 'mongodb';

export const PG_TABLES = ['customers', 'orders', 'events'] as const;

/** Creates database "shop" (schema shop: customers, orders with jsonb, events with bytea, a view). */
export async function seedPostgres(adminUrl: string, shopUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try { await admin.query('CREATE DATABASE shop'); } finally { await admin.end(); }
  const db = new pg.Client({ connectionString: shopUrl });
  await db.connect();
  try {
    await db.query(`
      CREATE SCHEMA shop;
      CREATE TABLE shop.customers (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE, country char(2), created_at timestamptz DEFAULT now());
      CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES shop.customers, total numeric(12,2), items jsonb, placed_at timestamptz, ref uuid DEFAULT gen_random_uuid());
      CREATE TABLE shop.events (id bigserial PRIMARY KEY, order_id bigint REFERENCES shop.orders, kind text, payload bytea);
      CREATE INDEX ON shop.orders (customer_id, placed_at DESC);
      CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE total > 500;
      INSERT INTO shop.customers (name, email, country) SELECT 'Customer ' || i, 'c' || i || '@example.org', (ARRAY['FR','DE','US','JP','BR'])[1 + i % 5] FROM generate_series(1, 3000) i;
      INSERT INTO shop.orders (customer_id, total, items, placed_at)
        SELECT 1 + i % 3000, round((random() * 1000)::numeric, 2), jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 997), 'qty', 1 + i % 5)), now() - (i || ' minutes')::interval FROM generate_series(1, 30000) i;
      INSERT INTO shop.events (order_id, kind, payload) SELECT 1 + i % 30000, (ARRAY['paid','shipped','returned'])[1 + i % 3], decode(md5(i::text), 'hex') FROM generate_series(1, 15000) i;
    `);
  } finally { await db.end(); }
}

/** The change between the two backups: 1% of the orders. */
export async function changePostgres(shopUrl: string): Promise<void> {
  const db = new pg.Client({ connectionString: shopUrl });
  await db.connect();
  try { await db.query('UPDATE shop.orders SET total = total + 1 WHERE id > 29700'); } finally { await db.end(); }
}

/** table -> "rows:md5 of every row's text, in order" */
export async function postgresDigest(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const t of PG_TABLES) {
      out[`shop.${t}`] = (await c.query(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS h FROM shop.${t} x`)).rows[0].h;
    }
    return out;
  } finally { await c.end(); }
}

interface Product {
  _id: number; sku: string; name: string; price: Decimal128; tags: string[]; stock: { warehouse: string; count: number }; createdAt: Date;
}

/** Database "catalog": products (decimal prices, nested stock) and reviews (ObjectIds, dates, binary). */
export async function seedMongo(url: string): Promise<void> {
  const client = await MongoClient.connect(url);
  try {
    const db = client.db('catalog');
    const start = Date.UTC(2024, 0, 1);
    await db.collection<Product>('products').insertMany(Array.from({ length: 300 }, (_, i) => ({
      _id: i + 1, sku: `SKU-${i}`, name: `Product ${i}`, price: Decimal128.fromString((3 + i * 1.25).toFixed(2)),
      tags: ['demo', i % 2 ? 'odd' : 'even', ...(i % 7 ? [] : ['featured'])],
      stock: { warehouse: ['PAR', 'BER', 'NYC'][i % 3]!, count: i % 50 }, createdAt: new Date(start + i * 3_600_000),
    })));
    await db.collection('reviews').insertMany(Array.from({ length: 600 }, (_, i) => reviewDoc(i)));
    await db.collection('reviews').createIndex({ productId: 1, stars: -1 });
  } finally { await client.close(); }
}

function reviewDoc(i: number) {
  return {
    _id: new ObjectId(), productId: 1 + (i % 300), stars: 1 + (i % 5), text: `Review ${i}: ${'good '.repeat(1 + (i % 9))}`.trim(),
    at: new Date(Date.UTC(2024, 5, 1) + i * 60_000), photo: new Binary(createHash('sha256').update(String(i)).digest()),
  };
}

/** The change between the two backups: a few new reviews, a few restocked products. */
export async function changeMongo(url: string): Promise<void> {
  const client = await MongoClient.connect(url);
  try {
    const db = client.db('catalog');
    await db.collection('reviews').insertMany(Array.from({ length: 10 }, (_, i) => reviewDoc(600 + i)));
    await db.collection<Product>('products').updateMany({ _id: { $lte: 5 } }, { $inc: { 'stock.count': 10 } });
  } finally { await client.close(); }
}

/** collection -> "documents:sha256 of their exact BSON bytes, sorted by _id" */
export async function mongoDigest(url: string, database: string): Promise<Record<string, string>> {
  const client = await MongoClient.connect(url);
  try {
    const db = client.db(database);
    const names = (await db.listCollections({}, { nameOnly: false }).toArray())
      .filter((c) => c.type !== 'view' && !c.name.startsWith('system.')).map((c) => c.name).sort();
    const out: Record<string, string> = {};
    for (const name of names) {
      const docs = (await db.collection(name).find({}, { raw: true, sort: { _id: 1 } }).toArray()) as unknown as Uint8Array[];
      const h = createHash('sha256');
      for (const d of docs) h.update(d);
      out[name] = `${docs.length}:${h.digest('hex')}`;
    }
    return out;
  } finally { await client.close(); }
}

export interface Fidelity { identical: boolean; objects: number; items: number; differing: string[] }

/** Compares two digests: the same tables/collections, each with the same count and hash. */
export function compareDigests(source: Record<string, string>, restored: Record<string, string>): Fidelity {
  const names = [...new Set([...Object.keys(source), ...Object.keys(restored)])].sort();
  const differing = names.filter((n) => source[n] !== restored[n]);
  const items = Object.values(source).reduce((n, v) => n + Number(v.split(':')[0]), 0);
  return { identical: names.length > 0 && differing.length === 0, objects: Object.keys(source).length, items, differing };
}
