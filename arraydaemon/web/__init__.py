"""``arraydaemon web``: a live view of the published scene in any browser.

A separate, light process (no numpy, numba or torch, like ``reason``): :mod:`arraydaemon.web.feed`
subscribes to the daemon's ``doa``, ``tracks``, ``health`` and ``array`` topics and hands each
message, as JSON, to every connected browser through a bounded queue per browser;
:mod:`arraydaemon.web.server` serves the page (``static/``: plain HTML, JavaScript and Canvas,
shipped in the package, nothing fetched from elsewhere) and the WebSocket feed with aiohttp.
"""
