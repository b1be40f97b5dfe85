"""The capture child → parent socket protocol (one ``SOCK_SEQPACKET`` message per item).

Each message is one kind byte, then a payload:

- ``OPEN``: JSON ``{"device", "index", "hostapi", "latency", "blocksize"}``, once the stream runs;
- ``BLOCK``: :data:`BLOCK_META`, then ``frames * channels`` float32 samples (interleaved);
- ``FAIL``: JSON ``{"message"}``, the device could not be opened (the child then exits 2);
- ``LOST``: JSON ``{"message"}``, the open stream failed or stalled (the child then exits 3).

Shared by :mod:`.parent` and :mod:`.child`; stdlib only (the child stays light).
"""

from __future__ import annotations

import struct

OPEN, BLOCK, FAIL, LOST = b"O", b"B", b"F", b"L"
# frames, channels, flags, child drops so far, inputBufferAdcTime, currentTime, wall clock in callback
BLOCK_META = struct.Struct("<IIIIddd")
FLAG_OVERFLOW, FLAG_UNDERFLOW = 1, 2
MAX_MESSAGE = 4 << 20  # bytes; also the child's SO_SNDBUF request (the kernel may cap it)
