"""The test suite, laid out as the package is (tests/core tests arraydaemon/core, tests/stages
arraydaemon/stages, ...), with tests/integration for whole-program runs. Markers: conftest.py."""
