-- 002_add_price (up): items get a price in cents.
-- Backward-compatible: the column has a default, so a version that does not know it
-- keeps inserting and reading items unchanged (dependencies.yaml requires this).
ALTER TABLE items ADD COLUMN price_cents INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0);
PRAGMA user_version = 2;
