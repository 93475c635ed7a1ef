-- Figure 7: deadlock probability of random schedules by concurrent balloon operations, lock order and balloon driver.
-- param: sweep = fig07_deadlock
SELECT
    "hypervisor.lock_order" AS lock_order,
    "locks.balloon_driver" AS balloon_driver,
    concurrent_ops,
    count(*) AS runs,
    sum(lock_trials) AS trials,
    sum(lock_deadlocked) AS deadlocked,
    sum(lock_deadlocked_hostmem) AS deadlocked_hostmem,
    sum(lock_deadlocked_oom) AS deadlocked_oom,
    sum(lock_deadlocked)::DOUBLE / sum(lock_trials) AS probability
FROM completed_runs
WHERE sweep = $sweep AND mode = 'locks'
GROUP BY ALL
ORDER BY lock_order, balloon_driver, concurrent_ops
