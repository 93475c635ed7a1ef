-- Figure 3: guest faults and throughput on `db` by guest replacement policy and balloon size.
-- Faults are compared per 1,000 references: a faster policy issues more references in the same time.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig03_ws_vs_file_first
SELECT
    "vms.guest_policy" AS guest_policy,
    "vms.balloon_mib" AS balloon_mib,
    "vms.mem_mib" AS mem_mib,
    count(*) AS runs,
    avg(guest_faults) AS faults,
    avg(guest_major_faults) AS major_faults,
    avg(file_drops) AS file_drops,
    avg(guest_swap_outs) AS swap_outs,
    avg(1000.0 * guest_major_faults / greatest("references", 1)) AS major_faults_per_1000_refs,
    avg(throughput_mean) AS throughput,
    avg(native_throughput) AS native_throughput,
    list(guest_major_faults ORDER BY replicate) AS major_faults_reps,
    list(1000.0 * guest_major_faults / greatest("references", 1) ORDER BY replicate) AS major_faults_per_1000_refs_reps,
    list(throughput_mean ORDER BY replicate) AS throughput_reps
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY guest_policy, balloon_mib
