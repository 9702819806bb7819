"""Evaluation of trained weights: metrics and sample grids, apart from training (as stylegan3 keeps metrics/)."""
