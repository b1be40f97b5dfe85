"""`arraydaemon web` (arraydaemon/web/): the command, its feed and its server, over real sockets;
the page in a real browser is in tests/integration/test_web.py."""
