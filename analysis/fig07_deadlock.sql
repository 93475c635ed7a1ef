-- Figure 7: deadlock probability of random schedules by concurrent balloon operations and lock order.
-- param: sweep = fig07_deadlock
SELECT
    "hypervisor.lock_order" AS lock_order,
    concurrent_ops,
    count(*) AS runs,
    sum(lock_trials) AS trials,
    sum(lock_deadlocked) AS deadlocked,
    sum(lock_deadlocked)::DOUBLE / sum(lock_trials) AS probability
FROM completed_runs
WHERE sweep = $sweep AND mode = 'locks'
GROUP BY ALL
ORDER BY lock_order, concurrent_ops
