-- Runs stored as `failed`, with their error (`balloonlab run` retries them).
SELECT sweep, run_id, replicate, error
FROM runs
WHERE outcome = 'failed'
ORDER BY sweep, run_id
