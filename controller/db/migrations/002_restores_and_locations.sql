-- Version 2: local (file://) repositories, a storage credential per repository, and the
-- parameters of a session (restore sessions record what they restore and where).

-- 'azblob': storage_account/container/folder name the place; 'file': path does
-- (storage_account and container are then empty strings).
ALTER TABLE repositories ADD COLUMN location_kind text NOT NULL DEFAULT 'azblob' CHECK (location_kind IN ('azblob', 'file'));
ALTER TABLE repositories ADD COLUMN path text UNIQUE;
-- A storage connection string or SAS token, sealed; null = the repository's service account or
-- the controller's environment (AZURE_STORAGE_CONNECTION_STRING, ...).
ALTER TABLE repositories ADD COLUMN storage_credential_sealed text;

-- Non-secret parameters of a session, e.g. a restore's restore point, target and subset.
ALTER TABLE sessions ADD COLUMN params jsonb;
