-- 001_create_items (up): the items table behind demo-service's /work.
-- Each up file ends by setting PRAGMA user_version to its number, so the schema
-- carries its own version (demo-service --db reports it as demo_service_schema_version).
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX items_by_name ON items (name);
PRAGMA user_version = 1;
