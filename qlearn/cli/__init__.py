"""Command-line entry points (the only place qlearn imports Hydra)."""
