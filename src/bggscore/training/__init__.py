"""Baseline trainers: one scikit-learn pipeline per outcome, registered with metrics."""
