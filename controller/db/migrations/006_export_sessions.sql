-- Export sessions (issue 9): a restore point written as a plain SQL script or a mongodump
-- archive into a blob, offered as a short-lived download link.
ALTER TABLE sessions DROP CONSTRAINT sessions_type_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_type_check
  CHECK (type IN ('backup', 'archive', 'restore', 'export', 'configuration', 'retention', 'cleanup', 'report'));
