SELECT * FROM runs ORDER BY random() LIMIT 3; -- ok
/* unterminated