"""``arraydaemon run``: live capture → pipeline → ZeroMQ, as a long-running (systemd) service.

Threads and processes::

    capture child (io/capture/child.py)  ──▶  reader thread ──BlockQueue──▶  consumer thread ──▶ Pipeline (publishes)
    main thread: supervisor — signals, device open / loss / reopen with backoff, SIGHUP reload

- The consumer owns the ZeroMQ socket: it publishes ``doa``/``embedding`` through the pipeline's
  PublishStage and ``health`` once a second, and sends the systemd ``WATCHDOG=1`` — so a stalled
  pipeline (or a stalled supervisor: the consumer checks its heartbeat) stops the watchdog.
- Signal handlers only set events. SIGTERM/SIGINT: stop the capture, drain the queue, publish a
  last ``health`` (``stopping``), close the socket, exit 0. SIGHUP: reload the configuration file
  and the profile without rebinding the socket (a changed ``endpoint`` needs a restart).
- Device missing at start: exit 2 with the list of input devices, or with ``--wait`` retry with
  backoff (health ``waiting``). Device lost while running (stream stopped, child gone, no audio for
  ~1 s): health ``device-lost``, kill the child, retry with backoff until it reopens.
- A window's time: ``t_end`` is on the device's stream clock (PortAudio's ADC time of the block);
  ``wall_time`` maps it to UNIX time (:class:`arraydaemon.io.capture.clock.ClockMap`). The stream clock restarts when
  the device is reopened. Window ``seq`` keeps counting across reopenings (the pipeline is not
  reset; the first window after a gap may span it).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from arraydaemon.core.errors import UserError
from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import ArrayProfile, load_profile
from arraydaemon.io.capture.clock import AdcSmoother, ClockMap
from arraydaemon.io.capture.parent import BlockQueue, CaptureProcess
from arraydaemon.io.files import ChannelMapper
from arraydaemon.io.notify import Notifier
from arraydaemon.io.publisher import ZmqPublisher
from arraydaemon.noise.state import restore_noise_state, save_noise_state
from arraydaemon.pipeline import Pipeline, StageTimer
from arraydaemon.service.health import HEALTH_PERIOD_S, HealthReporter, array_payload
from arraydaemon.service.settings import RunSettings, resolve_run

log = logging.getLogger("arraydaemon.service.daemon")

QUEUE_SECONDS = 2.0  # audio the consumer may fall behind before the oldest blocks are dropped
OPEN_TIMEOUT_S = 10.0  # for the capture child to open the device
BACKOFF_S = (0.5, 10.0)  # first and longest wait between reopen attempts (doubling)
NOISE_STATE_PERIOD_S = 300.0  # the online noise state is written this often (and at exit)
HEARTBEAT_STALE_S = 30.0  # supervisor silent this long → stop petting the watchdog


@dataclass
class Session:
    """What processes blocks: replaced as a whole on reload."""

    profile: ArrayProfile
    pipeline: Pipeline
    mapper: ChannelMapper
    min_generation: int  # blocks from older capture children are not for this session


def capture_params(settings: RunSettings, profile: ArrayProfile) -> tuple:
    return (settings.device if settings.device is not None else profile.device,
            profile.sample_rate, profile.channels, settings.latency)


class Daemon:
    def __init__(self, settings: RunSettings, args, notifier: Notifier | None = None):
        self.settings = settings
        self.args = args
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.state = "waiting"  # until the device is open
        self.publisher: ZmqPublisher | None = None
        self.session: Session | None = None
        self._pending: Session | None = None
        self._swap_lock = threading.Lock()
        self.capture: CaptureProcess | None = None
        self.generation = 0
        self.queue: BlockQueue | None = None
        self._finish = threading.Event()
        self._heartbeat = time.monotonic()
        self.fatal: BaseException | None = None
        # consumer-owned counters
        self.windows = 0
        self.overflows = 0
        self._bad_blocks_done = 0  # from replaced sessions
        self._child_dropped: dict[int, int] = {}
        self._clock = ClockMap()
        self._clock_gen = -1
        self._block_seq = 0
        self.health = HealthReporter()

    # ------------------------------------------------------------------ supervisor (main thread)

    def run(self) -> int:
        self._install_signals()
        profile = load_profile(self.settings.profile_ref)
        self.publisher = ZmqPublisher(self.settings.endpoint)
        consumer = None
        try:
            self.session = self._build_session(profile, self.settings.options, min_generation=0)
            self.queue = BlockQueue(int(QUEUE_SECONDS * profile.sample_rate))
            consumer = threading.Thread(target=self._consume, name="pipeline", daemon=True)
            consumer.start()
            if self._open_capture(initial=True):  # False: stopped while waiting
                self.notifier.ready(self._status_text())
                log.info("%s", self._status_text())
                self._supervise()
        finally:
            self._shutdown(consumer)
        if self.fatal is not None:
            log.error("pipeline failed: %r", self.fatal)
            return 1
        return 0

    def _install_signals(self) -> None:
        def stop(signum, frame):
            self.stop_event.set()

        def reload(signum, frame):
            self.reload_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _beat(self) -> bool:
        """Refresh the supervisor heartbeat; True when the daemon should stop."""
        self._heartbeat = time.monotonic()
        return self.stop_event.is_set()

    def _supervise(self) -> None:
        while not self.stop_event.wait(0.1):
            self._beat()
            if self.reload_event.is_set():
                self.reload_event.clear()
                self._reload()
            if self.capture is None:  # closed by a reload with new device settings
                if self._open_capture(initial=False):
                    self.notifier.status(self._status_text())
                continue
            reason = self.capture.lost
            if reason:
                self.state = "device-lost"
                log.warning("device lost: %s; reopening", reason)
                self.notifier.status(f"device lost: {reason}; retrying")
                self.capture.kill()  # closing a stream on a dead device can hang; the child just goes
                self.capture = None
                if self._open_capture(initial=False):
                    log.warning("device back: %s", self._status_text())
                    self.notifier.status(self._status_text())

    def _open_capture(self, initial: bool) -> bool:
        """Open the device (a new capture child); retries with backoff unless ``initial`` without
        --wait (then a UserError listing the devices). False when stopped meanwhile."""
        delay = BACKOFF_S[0]
        last_failure = None
        while True:
            profile = self.session.profile if self._pending is None else self._pending.profile
            device, rate, channels, latency = capture_params(self.settings, profile)
            self.generation += 1
            cap = CaptureProcess(device, rate, channels, latency, self.generation, self.queue.put)
            cap.start()
            opened = cap.wait_open(OPEN_TIMEOUT_S, cancel=self._beat)
            if opened is not None:
                self.capture = cap
                self.state = "running"
                return True
            cap.kill()
            if self.stop_event.is_set():
                return False
            failure = cap.failure or "unknown failure"
            if initial and not self.settings.wait:
                raise UserError(failure)
            if failure != last_failure:
                log.warning("%s; retrying (up to every %g s)", failure, BACKOFF_S[1])
                last_failure = failure
            if self.state not in ("device-lost",):
                self.state = "waiting"
            self.notifier.status(f"{'waiting for' if self.state == 'waiting' else 'lost'} device: {failure}")
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if self._beat() or self.stop_event.wait(0.1):
                    return False
                if self.reload_event.is_set():  # a reload may fix the device settings
                    self.reload_event.clear()
                    self._reload(reopen=False)
                    break
            delay = min(delay * 2, BACKOFF_S[1])

    def _status_text(self) -> str:
        cap = self.capture
        where = self.publisher.bound_endpoint if self.publisher else "-"
        prof = self.session.profile
        if cap is None or cap.opened is None:
            return f"{self.state}; profile {prof.name}; publishing on {where}"
        o = cap.opened
        return (f"capturing from '{o.device}' ({o.hostapi}) at {prof.sample_rate} Hz, {prof.channels} ch, "
                f"profile {prof.name}, estimator {self.session.pipeline.options.estimator}; "
                f"publishing on {where}")

    def _reload(self, reopen: bool = True) -> None:
        """SIGHUP: re-read the config file and the profile; keep the socket. Errors keep the old setup."""
        self.notifier.reloading()
        try:
            settings = resolve_run(self.args)
            profile = load_profile(settings.profile_ref)
            if settings.endpoint != self.settings.endpoint:
                log.warning("endpoint change to %s needs a restart; still publishing on %s",
                            settings.endpoint, self.publisher.bound_endpoint)
                settings = replace(settings, endpoint=self.settings.endpoint)
            current = (self._pending or self.session).profile
            restart = capture_params(settings, profile) != capture_params(self.settings, current)
            session = self._build_session(profile, settings.options,
                                          min_generation=self.generation + (1 if restart else 0))
        except Exception as exc:  # noqa: BLE001 - whatever fails, the running pipeline goes on
            reason = str(exc).splitlines()[0] if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            log.error("reload failed, keeping the running configuration: %s", reason[:500])
            self.notifier.ready(f"reload failed: {reason[:200]}")
            return
        if settings.log_level and not getattr(self.args, "log_level_explicit", False):
            logging.getLogger().setLevel(settings.log_level.upper())
        self.settings = settings
        with self._swap_lock:
            self._pending = session
        log.warning("reloaded: profile %s (%s), estimator %s%s", profile.name, profile.path,
                    settings.options.estimator, ", reopening the device" if restart else "")
        if restart and reopen and self.capture is not None:
            self.capture.stop()
            self.capture = None  # the supervisor loop reopens with the new parameters
        self.notifier.ready(self._status_text())

    def _build_session(self, profile: ArrayProfile, options: PipelineOptions, min_generation: int) -> Session:
        pipeline = Pipeline(profile, options, self.publisher)
        # Warm up (numba compilation, caches) before audio arrives, then forget it.
        publisher, pipeline.publish.publisher = pipeline.publish.publisher, None
        noise = np.random.default_rng(0).standard_normal(
            (pipeline.layout.window_samples + pipeline.layout.hop_samples, profile.num_mics)).astype(np.float32)
        pipeline.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, 0.01 * noise))
        pipeline.reset()
        pipeline.publish.publisher = publisher
        pipeline.timer = StageTimer()
        pipeline.windows = 0
        if options.noise_state and restore_noise_state(options.noise_state, pipeline):
            log.info("noise state restored from %s", options.noise_state)
        mapper = ChannelMapper(profile, profile.channels, f"profile '{profile.name}'")
        return Session(profile, pipeline, mapper, min_generation)

    def _shutdown(self, consumer: threading.Thread | None) -> None:
        self.state = "stopping"
        self.notifier.stopping("stopping")
        if self.capture is not None:
            self.capture.stop(grace_s=0.3)
            self.capture = None
        self._finish.set()
        stuck = False
        if consumer is not None:
            consumer.join(1.0)
            stuck = consumer.is_alive()
            if stuck:
                log.warning("pipeline did not finish within 1 s; exiting anyway")
        if self.publisher is not None and not stuck:  # a ZeroMQ socket is not for two threads
            self.publisher.close()
        self.notifier.close()

    # ------------------------------------------------------------------ consumer thread

    def _save_noise_state(self) -> None:
        """Keeps the online noise state (``--noise-state``); in the consumer thread, which owns the pipeline."""
        session = self.session
        path = session.pipeline.options.noise_state if session is not None else None
        if path:
            try:
                save_noise_state(path, session.pipeline)
            except UserError as exc:  # a full disk must not stop the daemon
                log.warning("%s", exc)

    def _consume(self) -> None:
        next_health = time.monotonic()
        next_state = next_health + NOISE_STATE_PERIOD_S
        try:
            while True:
                finishing = self._finish.is_set()
                blocks = self.queue.get_all(0.0 if finishing else 0.1)
                for block in blocks:
                    self._process(block)
                if not blocks:
                    self._maybe_swap(None)
                now = time.monotonic()
                if now >= next_health:
                    self._publish_health()
                    next_health = max(next_health + HEALTH_PERIOD_S, now)
                if now - self._heartbeat < HEARTBEAT_STALE_S:
                    self.notifier.watchdog(now)
                if self.session is not None and now >= next_state:
                    self._save_noise_state()
                    next_state = now + NOISE_STATE_PERIOD_S
                if finishing and not blocks:
                    break
            self._save_noise_state()
            self._publish_health(state="stopping")
        except BaseException as exc:  # noqa: BLE001 - a bug: make it visible and let systemd restart us
            log.exception("pipeline thread failed")
            self.fatal = exc
            self.stop_event.set()

    def _maybe_swap(self, generation: int | None) -> None:
        pending = self._pending
        if pending is None or (generation is not None and generation < pending.min_generation):
            return
        with self._swap_lock:
            self._bad_blocks_done += self.session.pipeline.features.bad_blocks
            self._carry_noise_state(self.session, pending)
            self.session, self._pending = pending, None

    def _carry_noise_state(self, old: Session, new: Session) -> None:
        """A reload keeps what the running pipeline learned of the noise: its state is saved (to the
        old ``--noise-state`` file) and the new pipeline loads its own file again, in the consumer
        thread at the swap (the new session read the file when it was built, minutes of learning
        ago). A state the new pipeline refuses (another profile or noise model) leaves it as built."""
        self._save_noise_state()
        path = new.pipeline.options.noise_state
        if not path:
            return
        try:
            if restore_noise_state(path, new.pipeline):
                log.info("noise state carried over the reload through %s", path)
        except UserError as exc:
            log.warning("noise state not carried over the reload: %s", exc)

    def _process(self, captured) -> None:
        self._maybe_swap(captured.generation)
        session = self.session
        if captured.generation < session.min_generation:
            return  # from a child with the previous device settings
        rate = session.profile.sample_rate
        frames = len(captured.samples)
        if captured.generation != self._clock_gen:  # a new stream, a new clock
            self._clock, self._clock_gen = ClockMap(), captured.generation
            self._smoother = AdcSmoother(rate)
            self._stream_frames = 0
        adc, current = captured.adc_time, captured.current_time
        if current <= 0.0 and adc <= 0.0:  # host API without timestamps: count samples
            adc = self._stream_frames / rate
            current = adc + frames / rate
        elif adc <= 0.0:
            adc = current - frames / rate
        self._stream_frames += frames
        self._clock.observe(current, captured.wall_in_callback)
        adc = self._smoother(adc, frames)
        if captured.overflow:
            self.overflows += 1
        self._child_dropped[captured.generation] = captured.child_dropped
        block = AudioBlock(seq=self._block_seq, sample_rate=rate, t_start=adc,
                           wall_start=self._clock.to_wall(adc), samples=session.mapper(captured.samples))
        self._block_seq += 1
        self.windows += len(session.pipeline.process(block))

    def _publish_health(self, state: str | None = None) -> None:
        session = self.session
        now = time.time()
        offset = self._clock.offset
        payload = self.health.payload(
            session.profile, state=state or self.state, t_end=now - offset if math.isfinite(offset) else 0.0,
            wall_time=now, windows=self.windows, overflows=self.overflows,
            dropped_blocks=self.queue.dropped + sum(self._child_dropped.values()),
            bad_blocks=self._bad_blocks_done + session.pipeline.features.bad_blocks,
            queue_depth=len(self.queue), stage_ms=session.pipeline.timer.summary(), exposed=self.publisher.exposed,
            child=self.capture)
        self.publisher.send("health", payload)
        self.publisher.send("array", array_payload(session.profile, session.pipeline.options.estimator, payload))


def run_daemon(args) -> int:
    """``arraydaemon run``: see the module docstring."""
    args.log_level_explicit = any(a == "--log-level" or a.startswith("--log-level=") for a in sys.argv[1:])
    settings = resolve_run(args)
    if not args.log_level_explicit:
        # a daemon reports its lifecycle (start, device lost/back, reload) unless told otherwise
        logging.getLogger().setLevel((settings.log_level or "info").upper())
    os.environ.setdefault("JACK_NO_START_SERVER", "1")  # never spawn a JACK server as a side effect
    return Daemon(settings, args).run()
