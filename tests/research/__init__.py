"""Tests of arraydaemon.research: simulation, datasets, training, evaluation, benchmarks, the training extra."""
