"""Tests of arraydaemon.reason: the built-in answerer, scene memory and the reason command."""
