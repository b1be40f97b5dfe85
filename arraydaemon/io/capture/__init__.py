"""Live capture through PortAudio in a child process.

- :mod:`.devices`: input device tables, device matching, the ``arraydaemon devices`` table;
- :mod:`.parent`: the daemon side (:class:`~.parent.CaptureProcess`, :class:`~.parent.BlockQueue`);
- :mod:`.child`: the capture child, ``python -m arraydaemon.io.capture.child`` (no numpy);
- :mod:`.protocol`: the child → parent socket messages;
- :mod:`.clock`: stream time → wall time, ADC-time de-jittering.
"""
