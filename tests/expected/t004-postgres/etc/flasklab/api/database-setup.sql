-- Written by flasklab for stack t004-postgres (recipe nginx-gunicorn-systemd); change the stack's config rather than this file.
-- The database of api (UTF-8), owned by a user with rights on it alone; no other
-- user may connect to it. Run by flasklab-deploy; safe to run again.
SELECT 'CREATE ROLE api LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'api')\gexec
ALTER ROLE api WITH LOGIN PASSWORD 'TestDatabasePassword0123456789ab';
SELECT 'CREATE DATABASE api OWNER api ENCODING ''UTF8'' TEMPLATE template0' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'api')\gexec
REVOKE ALL ON DATABASE api FROM PUBLIC;
