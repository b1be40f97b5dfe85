"""Several arrays, one map: the room file, the fusion of every array's ``tracks`` into room-frame
positions, and the ``fuse`` service that publishes them as the ``positions`` topic.

Room frame: x, y on the floor, z up, metres. An array's pose is its position and yaw
(counter-clockwise from room +x to the array's +x), optionally pitch and roll; array frames stay
REP-103 (x forward, y left, z up). Pure parts (``room``, ``geometry``, ``associate``, ``tracker``,
``fuser``, ``coverage``) do no I/O; ``service`` owns the sockets.
"""
