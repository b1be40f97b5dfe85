"""``arraydaemon profile verify``: check an array profile against a recording of the array.

A recording of someone talking while walking around the array (or clapping, or a loudspeaker) is
enough to catch what costs installers the most time: a wrong ``channel_map`` (directions off by
60-180°), a dead or inverted mic, two channels carrying the same signal, a geometry of the wrong
size, a device at another sample rate. One concept per module:

- :mod:`.recording`: the recording (a file, or the device through the capture child);
- :mod:`.pairs`: STFT, active windows, GCC-PHAT of every channel pair;
- :mod:`.channels`: level, dead, clipped, DC, gain, polarity, duplicated channels;
- :mod:`.order`: the channel-order check and search (:mod:`.kernels`, :mod:`.reference`,
  :mod:`.symmetry`);
- :mod:`.delays`: observed against allowed delay per mic pair;
- :mod:`.coherence`: pair distances from diffuse noise;
- :mod:`.scale`: the size of the geometry;
- :mod:`.rate`: the sample rate;
- :mod:`.report`: verdict, details, JSON; :mod:`.plot`: the figure;
- :mod:`.run`: :func:`verify_recording`, all of it in order.
"""

from __future__ import annotations

from arraydaemon.verify.recording import Recording, from_array, read_file, record_device
from arraydaemon.verify.report import Report
from arraydaemon.verify.run import verify_recording

__all__ = ["Recording", "Report", "from_array", "read_file", "record_device", "verify_recording"]
