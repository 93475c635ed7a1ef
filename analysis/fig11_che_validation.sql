-- Figure 11: simulated LRU hit ratio vs Che's approximation, per Zipf exponent and cache size.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig11_che_validation
SELECT
    json_extract("vms.workload_params", '$.alpha')::DOUBLE AS alpha,
    "replay.cache_mib" AS cache_mib,
    count(*) AS runs,
    avg(hit_ratio) AS hit_ratio,
    avg(che_hit_ratio) AS che_hit_ratio,
    avg(hit_ratio - che_hit_ratio) AS error,
    avg("references") AS "references",
    list(hit_ratio ORDER BY replicate) AS hit_ratio_reps,
    list(hit_ratio - che_hit_ratio ORDER BY replicate) AS error_reps
FROM completed_runs
WHERE sweep = $sweep AND mode = 'replay' AND "replay.policy" = 'lru'
GROUP BY ALL
ORDER BY alpha, cache_mib
