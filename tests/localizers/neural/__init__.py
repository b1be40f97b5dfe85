"""Tests of arraydaemon.localizers.neural: tokens, model, runtime, stage."""
