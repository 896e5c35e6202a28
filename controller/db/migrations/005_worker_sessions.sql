-- Sessions through workers (issue 9). A backup makes one restore point per database, so a point
-- records which database it holds; the databases to back up on a PostgreSQL cluster are part of
-- the policy's credentials for it (empty = Cosmos DB for PostgreSQL's own database, "citus").
ALTER TABLE restore_points ADD COLUMN database_name text;
ALTER TABLE policy_credentials ADD COLUMN databases jsonb NOT NULL DEFAULT '[]'::jsonb;
-- libpq sslmode for the worker's connection; Azure requires TLS, so the default checks the certificate.
ALTER TABLE policy_credentials ADD COLUMN sslmode text NOT NULL DEFAULT 'verify-full';
-- Workers this controller launched and has not removed yet: after a crash, the next start removes
-- them (VM, NIC, disk, queues). Nothing secret is kept: the per-worker key lives in memory only.
CREATE TABLE workers (
  id text PRIMARY KEY,
  service_account_id text NOT NULL,
  subscription_id text NOT NULL,
  resource_group text NOT NULL,
  region text NOT NULL,
  vm_name text NOT NULL,
  queue_storage_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
