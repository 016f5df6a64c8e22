-- 001_create_items (down): remove the items table; back to an empty schema.
DROP INDEX items_by_name;
DROP TABLE items;
PRAGMA user_version = 0;
