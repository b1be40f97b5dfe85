"""Tests of arraydaemon.stages: features, tracker, publish."""
