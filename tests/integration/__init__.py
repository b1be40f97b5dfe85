"""Whole-program tests: the command line end to end, live JACK capture, reason over ZeroMQ, the systemd unit."""
