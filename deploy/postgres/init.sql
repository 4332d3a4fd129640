-- One-time setup of the two databases of a PostgreSQL deployment (run as a superuser: psql -f init.sql).
-- Replace the passwords; they go into DAGSTER_PG_PASSWORD and CORE_DATABASE_URL.
CREATE ROLE dagster LOGIN PASSWORD 'change-me';
CREATE DATABASE dagster OWNER dagster;

CREATE ROLE core LOGIN PASSWORD 'change-me';
CREATE DATABASE core_registry OWNER core;
