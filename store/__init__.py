"""balloonlab's results store: Parquet files per run (``parquet``) and per-sweep locks
(``sweep_lock``). Imports neither the harness nor the analysis."""
