"""Evaluation of trained weights: metrics and sample grids, kept apart from training/."""
