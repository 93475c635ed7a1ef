-- Most profitable overcommit per policy: the swept ratio with the highest mean profit per host-hour, with a 95% t-interval over its replicates.
-- param: sweep = fig08_economics
-- The interval is mean +- t(0.975, n - 1) * sd / sqrt(n) (Student's t over replicates; NULL
-- for a single replicate). Replicates of a point are runs sharing policy and overcommit.
WITH points AS (
    SELECT
        "hypervisor.policy" AS policy,
        "host.overcommit" AS overcommit,
        count(profit_per_host_hour) AS runs,
        avg(profit_per_host_hour) AS profit,
        stddev_samp(profit_per_host_hour) AS sd
    FROM completed_runs
    WHERE sweep = $sweep AND profit_per_host_hour IS NOT NULL
    GROUP BY ALL
),
ranked AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY policy ORDER BY profit DESC, overcommit) AS rank,
        CASE runs - 1
            WHEN 1 THEN 12.706 WHEN 2 THEN 4.303 WHEN 3 THEN 3.182 WHEN 4 THEN 2.776
            WHEN 5 THEN 2.571 WHEN 6 THEN 2.447 WHEN 7 THEN 2.365 WHEN 8 THEN 2.306
            WHEN 9 THEN 2.262 WHEN 10 THEN 2.228 WHEN 11 THEN 2.201 WHEN 12 THEN 2.179
            WHEN 13 THEN 2.160 WHEN 14 THEN 2.145 WHEN 15 THEN 2.131 WHEN 16 THEN 2.120
            WHEN 17 THEN 2.110 WHEN 18 THEN 2.101 WHEN 19 THEN 2.093 WHEN 20 THEN 2.086
            WHEN 25 THEN 2.060 WHEN 30 THEN 2.042
            ELSE CASE WHEN runs - 1 > 30 THEN 1.96 WHEN runs - 1 > 20 THEN 2.07 END
        END AS t
    FROM points
)
SELECT
    policy,
    overcommit AS best_overcommit,
    profit AS profit_per_host_hour,
    profit - t * sd / sqrt(runs) AS ci_low,
    profit + t * sd / sqrt(runs) AS ci_high,
    runs
FROM ranked
WHERE rank = 1
ORDER BY policy
