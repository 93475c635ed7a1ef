-- Break-even overcommit per policy: the ratio at which mean profit per host-hour first falls to $threshold (interpolated between swept ratios; NULL when it never does in the sweep).
-- param: sweep = fig08_economics
-- param: threshold = 0
-- Replicates are averaged per (policy, overcommit) first; the crossing is the first step,
-- in increasing overcommit, from above the threshold to at or below it.
WITH points AS (
    SELECT
        "hypervisor.policy" AS policy,
        "host.overcommit" AS overcommit,
        count(*) AS runs,
        avg(profit_per_host_hour) AS profit
    FROM completed_runs
    WHERE sweep = $sweep AND profit_per_host_hour IS NOT NULL
    GROUP BY ALL
),
steps AS (
    SELECT
        *,
        lag(overcommit) OVER w AS prev_overcommit,
        lag(profit) OVER w AS prev_profit,
        first_value(profit) OVER w AS first_profit
    FROM points
    WINDOW w AS (PARTITION BY policy ORDER BY overcommit)
),
crossings AS (
    SELECT
        policy,
        min(prev_overcommit + (CAST($threshold AS DOUBLE) - prev_profit)
            * (overcommit - prev_overcommit) / (profit - prev_profit)) AS break_even
    FROM steps
    WHERE prev_profit > CAST($threshold AS DOUBLE) AND profit <= CAST($threshold AS DOUBLE)
    GROUP BY policy
)
SELECT
    s.policy,
    c.break_even AS break_even_overcommit,
    any_value(s.first_profit) > CAST($threshold AS DOUBLE) AS profitable_at_lowest,
    min(s.overcommit) AS swept_from,
    max(s.overcommit) AS swept_to,
    max(s.profit) AS best_profit_per_host_hour,
    sum(s.runs) AS runs
FROM steps s
LEFT JOIN crossings c USING (policy)
GROUP BY s.policy, c.break_even
ORDER BY s.policy
