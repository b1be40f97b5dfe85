"""Tests of arraydaemon.service: the daemon's settings and configuration file."""
