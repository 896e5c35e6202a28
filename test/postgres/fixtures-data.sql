-- Data edge cases for the engine round trip (loaded after the rich schema fixture).
CREATE SCHEMA "Data Edge";
CREATE TABLE "Data Edge"."select" ("order" serial PRIMARY KEY, t text, b bytea, j jsonb, n numeric, u uuid, ts timestamptz, arr int[]);
INSERT INTO "Data Edge"."select" (t, b, j, n, u, ts, arr) VALUES
  ('', '', '{}', 0, '00000000-0000-0000-0000-000000000000', '1970-01-01 00:00:00+00', '{}'),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (E'control \x01\x02\x1f chars, tab\t, cr\r, lf\n, backslash \\ and "quotes"', '\x00ff00', '{"a": [1, 2, {"b": null}]}', 1e-30, gen_random_uuid(), 'infinity', '{1,NULL,3}'),
  ('unicode: Grüße, 日本語, emoji 🎉, RTL עברית, combining é', '\xdeadbeef', '"just a string"', 'NaN', gen_random_uuid(), '-infinity', ARRAY[2147483647, -2147483648]),
  (repeat('huge row ', 1200000), decode(repeat('ab', 3000000), 'hex'), NULL, 123456789012345678901234567890.123456789, NULL, now(), NULL);
INSERT INTO "Data Edge"."select" (t, j, n) SELECT md5(i::text) || repeat('x', i % 300), jsonb_build_object('i', i, 'tag', 'v' || (i % 17)), i / 7.0 FROM generate_series(1, 20000) i;
SELECT lo_from_bytea(0, decode(repeat('0123456789abcdef', 200000), 'hex'));
