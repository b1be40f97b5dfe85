"""Tests of arraydaemon.io: the wire format and publisher, sd_notify, live capture's queue and clocks."""
