-- Configuration database, version 1. Runs unchanged on PostgreSQL and on PGlite.
-- Columns ending in _sealed hold AES-256-GCM ciphertext under the controller master key
-- (controller/db/secrets.ts); no secret is ever stored in plaintext.

CREATE TABLE controller_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE api_tokens (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  token_sha256 text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz
);

CREATE TABLE service_accounts (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  tenant_id text NOT NULL,
  client_id text,
  auth text NOT NULL CHECK (auth IN ('secret', 'managedIdentity')),
  secret_sealed text,
  subscriptions jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repositories (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  service_account_id text REFERENCES service_accounts(id),
  storage_account text NOT NULL,
  container text NOT NULL,
  folder text NOT NULL DEFAULT '',
  access_tier text NOT NULL,
  password_sealed text,
  immutability boolean NOT NULL DEFAULT false,
  -- the repository format's own id, returned by init/attach
  format_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (storage_account, container, folder)
);

CREATE TABLE worker_configurations (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  region text NOT NULL,
  profile text NOT NULL,
  virtual_network text,
  subnet text,
  private_network boolean NOT NULL DEFAULT false,
  max_workers integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policies (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  enabled boolean NOT NULL DEFAULT true,
  priority integer NOT NULL,
  service_account_id text NOT NULL REFERENCES service_accounts(id),
  scope jsonb NOT NULL,
  continuous_tier integer NOT NULL CHECK (continuous_tier IN (7, 30)),
  backup jsonb,
  archive jsonb,
  notifications jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Database logins per account for backup to repository (password sealed).
CREATE TABLE policy_credentials (
  policy_id text NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
  account_id text NOT NULL,
  username text NOT NULL,
  password_sealed text NOT NULL,
  PRIMARY KEY (policy_id, account_id)
);

CREATE TABLE sessions (
  id text PRIMARY KEY,
  type text NOT NULL CHECK (type IN ('backup', 'archive', 'restore', 'configuration', 'retention', 'cleanup', 'report')),
  state text NOT NULL CHECK (state IN ('running', 'success', 'warning', 'failed')),
  policy_id text REFERENCES policies(id) ON DELETE SET NULL,
  trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'missed', 'system')),
  -- the schedule time this run serves (null for manual runs): finds missed runs after a restart
  scheduled_for timestamptz,
  flags jsonb NOT NULL DEFAULT '[]',
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  bytes bigint NOT NULL DEFAULT 0,
  accounts jsonb NOT NULL DEFAULT '[]',
  error text,
  -- set on start-up for sessions a stopped controller left running; such a scheduled run may run again
  interrupted boolean NOT NULL DEFAULT false
);
CREATE INDEX sessions_policy_idx ON sessions (policy_id, started_at);
CREATE INDEX sessions_state_idx ON sessions (state);
-- a scheduled time is served once (an interrupted attempt does not count)
CREATE UNIQUE INDEX sessions_scheduled_once ON sessions (policy_id, type, scheduled_for) WHERE scheduled_for IS NOT NULL AND NOT interrupted;

CREATE TABLE session_logs (
  id bigserial PRIMARY KEY,
  session_id text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT now(),
  level text NOT NULL CHECK (level IN ('info', 'warning', 'error')),
  message text NOT NULL
);
CREATE INDEX session_logs_session_idx ON session_logs (session_id, id);

CREATE TABLE restore_points (
  id text PRIMARY KEY,
  policy_id text REFERENCES policies(id) ON DELETE SET NULL,
  session_id text REFERENCES sessions(id) ON DELETE SET NULL,
  account_id text NOT NULL,
  account_name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('continuous', 'repository', 'archive')),
  created_at timestamptz NOT NULL,
  -- harmonized flags: [{"flag":"D","expiresAt":"..."}]
  flags jsonb NOT NULL DEFAULT '[]',
  size bigint NOT NULL DEFAULT 0,
  repository_id text REFERENCES repositories(id),
  -- id of the restore point inside the repository format
  format_point_id text,
  access_tier text,
  continuous_tier integer,
  -- continuous backup: the span Azure can restore to, as known at this synchronisation
  window_start timestamptz,
  window_end timestamptz
);
CREATE INDEX restore_points_account_idx ON restore_points (account_id, created_at);
CREATE INDEX restore_points_policy_idx ON restore_points (policy_id, kind);

CREATE TABLE settings (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
