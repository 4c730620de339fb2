"""Training utilities: data, synthetic tasks, metrics and training loops."""
