-- Azure control plane (issue 8): the cloud each service account signs in to, what discovery
-- found per service account, and the last check of each service account.

-- ARM endpoint and Entra authority host of the service account's cloud; null = the controller's
-- default (public Azure unless configured): sovereign clouds are configuration, not code.
ALTER TABLE service_accounts ADD COLUMN arm_endpoint text;
ALTER TABLE service_accounts ADD COLUMN authority_host text;

-- One row per Cosmos DB account instance or PostgreSQL cluster a service account sees. An account
-- re-created under the same name is a new instance (new row); one that vanished keeps its row,
-- marked deleted, so its restore points and restore source (instance id) stay known.
CREATE TABLE cloud_accounts (
  id text PRIMARY KEY,
  service_account_id text NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
  arm_id text NOT NULL,
  instance_id text,
  name text NOT NULL,
  subscription_id text NOT NULL,
  resource_group text NOT NULL,
  region text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('NoSql', 'MongoRU', 'Table', 'Gremlin', 'Cassandra', 'PostgreSQL')),
  tags jsonb NOT NULL DEFAULT '{}',
  backup_type text,
  continuous_tier integer,
  migrating boolean NOT NULL DEFAULT false,
  oldest_restorable_time timestamptz,
  server_version text,
  coordinator_fqdn text,
  discovered_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
CREATE UNIQUE INDEX cloud_accounts_instance ON cloud_accounts (service_account_id, lower(arm_id), coalesce(lower(instance_id), ''));
CREATE INDEX cloud_accounts_name ON cloud_accounts (lower(name));

CREATE TABLE service_account_checks (
  service_account_id text PRIMARY KEY REFERENCES service_accounts(id) ON DELETE CASCADE,
  checked_at timestamptz NOT NULL DEFAULT now(),
  subscriptions jsonb NOT NULL DEFAULT '[]',
  missing_actions jsonb NOT NULL DEFAULT '{}',
  error text,
  last_rescan_at timestamptz
);

-- Per policy: may a configuration session migrate a periodic-backup account to continuous backup?
-- The change is one-way in Azure, so it is off until an administrator turns it on.
CREATE TABLE policy_continuous_settings (
  policy_id text PRIMARY KEY REFERENCES policies(id) ON DELETE CASCADE,
  allow_migration boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
