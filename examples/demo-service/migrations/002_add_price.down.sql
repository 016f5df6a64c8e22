-- 002_add_price (down): drop the price column (SQLite >= 3.35); items keep their rows.
ALTER TABLE items DROP COLUMN price_cents;
PRAGMA user_version = 1;
