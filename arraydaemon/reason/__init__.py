"""The reasoning subscriber, ``arraydaemon reason`` (pure Python: no numpy, numba or torch).

- :mod:`~arraydaemon.reason.memory`: the scene memory folded from the ``tracks``, ``doa`` and
  ``embedding`` topics.
- :mod:`~arraydaemon.reason.answers`: the built-in, deterministic answers to spatial questions.
- :mod:`~arraydaemon.reason.llm`: the OpenAI-compatible chat-completions client, with fallback.
- :mod:`~arraydaemon.reason.listener`: the ZeroMQ subscriber and the command.

Directions follow REP-103 (x forward, y left, z up): azimuth 0° is straight ahead, +90° left,
-90° right, ±180° behind.
"""
