"""balloonlab's experiment harness: CLI, sweep specs, executors, the sweep driver."""
