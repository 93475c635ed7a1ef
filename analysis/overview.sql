-- Every stored sweep: runs by outcome, simulated references and simulator time.
SELECT
    sweep,
    count(*) AS runs,
    count(*) FILTER (WHERE outcome = 'ok') AS ok,
    count(*) FILTER (WHERE outcome = 'failed') AS failed,
    count(*) FILTER (WHERE outcome NOT IN ('ok', 'failed')) AS other_outcome,
    sum("references") AS "references",
    round(sum(wall_seconds), 2) AS wall_seconds
FROM runs
GROUP BY sweep
ORDER BY sweep
