#!/usr/bin/env bash
# Installs everything the test suite needs (Debian packages, a venv with the test extras) and runs it.
# Extra arguments go to pytest. Used by the README and by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# libportaudio2 + jackd2: a real PortAudio device for capture tests; espeak-ng: speech for simulated
# scenes; systemd: `systemd-analyze verify` for the unit file lint; chromium (+ a font to render text
# headless): the browser the `arraydaemon web` tests drive with Playwright (never a downloaded one).
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libportaudio2 libsndfile1 espeak-ng jackd2 sox systemd chromium fonts-dejavu-core >/dev/null
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-thorough}"  # thousands of generated inputs per property test
exec .venv/bin/python -m pytest "$@"
