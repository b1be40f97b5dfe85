"""Input and output: recordings, live capture, the wire format, systemd notifications."""
