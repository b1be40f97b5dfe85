"""Simulation, datasets, training, evaluation and benchmarks."""
