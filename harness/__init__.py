"""balloonlab's experiment harness: CLI, sweep specs, executors, Parquet store."""
