-- A policy's permission to migrate periodic-backup accounts to continuous backup becomes a field
-- of the policy itself (issue 8), so it is created, read and edited with the rest of the policy.
-- The change it allows is one-way in Azure, so it stays off unless an administrator turns it on.
ALTER TABLE policies ADD COLUMN allow_migration boolean NOT NULL DEFAULT false;
UPDATE policies SET allow_migration = s.allow_migration FROM policy_continuous_settings s WHERE s.policy_id = policies.id;
DROP TABLE policy_continuous_settings;
