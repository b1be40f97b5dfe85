"""Tests of arraydaemon.localizers: SRP-PHAT, the scan, refinement, temporal integration; neural/
for the neural localizer."""
