-- name: insert_bars
-- One replay step's bars in one statement (a column array per parameter); returns the
-- symbols whose bar was new.
INSERT INTO bars (symbol, ts, open, high, low, close, volume, source)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                     $7::float8[], $8::text[])
ON CONFLICT (symbol, ts) DO NOTHING RETURNING symbol
