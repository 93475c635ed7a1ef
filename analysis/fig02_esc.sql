-- Figure 2: replay faults, write-backs and ESC's evictions by (R, M) class, per workload, cache size and policy.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- The claim compares counts (every policy replays the same trace); the figure shows them per 1,000 references.
-- param: sweep = fig02_esc
SELECT
    "vms.workload" AS workload,
    "replay.cache_mib" AS cache_mib,
    "replay.policy" AS policy,
    count(*) AS runs,
    avg(replay_faults) AS faults,
    avg(replay_writebacks) AS writebacks,
    avg(1000.0 * replay_faults / greatest(replay_hits + replay_faults, 1)) AS faults_per_1000_refs,
    avg(1000.0 * replay_writebacks / greatest(replay_hits + replay_faults, 1)) AS writebacks_per_1000_refs,
    avg(hit_ratio) AS hit_ratio,
    avg(esc_evict_00) AS evict_00,
    avg(esc_evict_01) AS evict_01,
    avg(esc_evict_10) AS evict_10,
    avg(esc_evict_11) AS evict_11,
    list(replay_faults ORDER BY replicate) AS faults_reps,
    list(replay_writebacks ORDER BY replicate) AS writebacks_reps,
    list(1000.0 * replay_faults / greatest(replay_hits + replay_faults, 1) ORDER BY replicate) AS faults_per_1000_refs_reps,
    list(1000.0 * replay_writebacks / greatest(replay_hits + replay_faults, 1) ORDER BY replicate) AS writebacks_per_1000_refs_reps,
    list(esc_evict_00 ORDER BY replicate) AS evict_00_reps,
    list(esc_evict_01 ORDER BY replicate) AS evict_01_reps,
    list(esc_evict_10 ORDER BY replicate) AS evict_10_reps,
    list(esc_evict_11 ORDER BY replicate) AS evict_11_reps
FROM completed_runs
WHERE sweep = $sweep AND mode = 'replay'
GROUP BY ALL
ORDER BY workload, cache_mib, policy
