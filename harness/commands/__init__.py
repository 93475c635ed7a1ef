"""CLI commands, one module per family; each registers on harness.cli.app."""
