"""Scene simulation: dry sources, free-field plane waves and reverberant rooms.

Used by the localizer tests, by ``tools/make_demo.py`` and by training-data generation. Everything
is real signal processing (espeak-ng speech, pyroomacoustics image sources) and deterministic from
the ``numpy.random.Generator`` passed in: the same seed gives the same samples, bit for bit, on the
same machine and library versions.

Conventions (see ``shared/DESIGN.md``): REP-103 array frame, x forward, y left, z up, metres;
azimuth in degrees counter-clockwise from +x in (-180, 180]; elevation in degrees up from the
x-y plane. Audio arrays are float32 ``[shape=(samples, mics)]``; geometry is float64.

Room scenes (:func:`room_scene`) use the image-source method of pyroomacoustics for the early
part of each room impulse response, up to an image order that keeps the runtime bounded; when the
requested RT60 needs a higher order than that, the impulse response is completed beyond the time
up to which the image set is complete by a late-reverberation tail: spherically-isotropic diffuse
noise (sinc coherence between the microphones of the actual geometry) decaying at exactly the
requested RT60, level-matched to the image-source response where they meet.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.fft
import scipy.signal

__all__ = [
    "SceneResult",
    "SourceSpec",
    "diffuse_noise",
    "direction_vector",
    "free_field_scene",
    "harmonic_source",
    "noise_burst_source",
    "stationary_noise_source",
    "random_dry_source",
    "room_scene",
    "speech_source",
    "vector_to_angles",
]

# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def direction_vector(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector pointing from the array towards a direction, in the REP-103 array frame.

    Returns float64 ``[shape=(3,)]``: ``(cos el cos az, cos el sin az, sin el)``.
    """
    az = math.radians(float(azimuth_deg))
    el = math.radians(float(elevation_deg))
    return np.array(
        [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)], dtype=np.float64
    )


def vector_to_angles(vector: np.ndarray) -> tuple[float, float]:
    """Inverse of :func:`direction_vector` for any non-zero vector ``[shape=(3,)]``.

    Returns ``(azimuth_deg, elevation_deg)`` with azimuth in (-180, 180] and elevation in
    [-90, 90].
    """
    v = np.asarray(vector, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ValueError("cannot take the direction of a zero vector")
    az = math.degrees(math.atan2(v[1], v[0]))
    if az <= -180.0:
        az += 360.0
    el = math.degrees(math.asin(max(-1.0, min(1.0, v[2] / norm))))
    return az, el


def _as_mic_positions(mic_positions: np.ndarray) -> np.ndarray:
    mics = np.asarray(mic_positions, dtype=np.float64)
    if mics.ndim != 2 or mics.shape[1] != 3 or mics.shape[0] < 1:
        raise ValueError(f"mic_positions must have shape (mics, 3), got {mics.shape}")
    return mics


def _as_signal(signal: np.ndarray, what: str) -> np.ndarray:
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 1 or sig.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty 1-D signal, got shape {sig.shape}")
    return sig


def _num_samples(duration_s: float, sample_rate: int) -> int:
    if duration_s <= 0 or sample_rate <= 0:
        raise ValueError("duration_s and sample_rate must be positive")
    return int(round(duration_s * sample_rate))


# ---------------------------------------------------------------------------------------------
# Dry sources
# ---------------------------------------------------------------------------------------------

_PEAK = 0.5

# Debian espeak-ng voices (language, words); words are everyday vocabulary so that espeak-ng
# produces natural-ish prosody. Languages without a word list get random syllable strings.
_WORDS: dict[str, tuple[str, ...]] = {
    "en": tuple(
        "the quick brown fox jumps over a lazy dog while seven small birds sing near the old "
        "river bridge please bring me water from the kitchen tomorrow morning we will walk "
        "to the market and buy fresh bread apples cheese coffee my friend called yesterday "
        "about the meeting at noon everyone should remember their keys phone wallet window "
        "table chair garden yellow green purple winter summer evening light sound music "
        "robot listen speak forward left right turn stop start hello thanks maybe never always "
        "number seventeen ninety hundred question answer story travel airport station".split()
    ),
    "de": tuple(
        "der die das und ich du wir sie haus baum wasser brot morgen abend heute gestern "
        "schnell langsam gross klein rot blau grün fenster tür tisch stuhl garten stadt "
        "bahnhof freund arbeit schule kinder hund katze vogel sonne regen wind musik "
        "sprechen hören gehen kommen bitte danke vielleicht immer niemals zwölf hundert".split()
    ),
    "fr": tuple(
        "le la les et je tu nous vous maison arbre eau pain demain soir aujourd'hui hier "
        "rapide lent grand petit rouge bleu vert fenêtre porte table chaise jardin ville "
        "gare ami travail école enfants chien chat oiseau soleil pluie vent musique parler "
        "écouter aller venir merci peut-être toujours jamais douze cent bonjour".split()
    ),
    "es": tuple(
        "el la los y yo tú nosotros casa árbol agua pan mañana noche hoy ayer rápido lento "
        "grande pequeño rojo azul verde ventana puerta mesa silla jardín ciudad estación "
        "amigo trabajo escuela niños perro gato pájaro sol lluvia viento música hablar "
        "escuchar ir venir gracias quizás siempre nunca doce cien hola".split()
    ),
    "it": tuple(
        "il la gli e io tu noi casa albero acqua pane domani sera oggi ieri veloce lento "
        "grande piccolo rosso blu verde finestra porta tavolo sedia giardino città stazione "
        "amico lavoro scuola bambini cane gatto uccello sole pioggia vento musica parlare "
        "ascoltare andare venire grazie forse sempre mai dodici cento ciao".split()
    ),
    "pt": tuple(
        "o a os e eu tu nós casa árvore água pão amanhã noite hoje ontem rápido lento "
        "grande pequeno vermelho azul verde janela porta mesa cadeira jardim cidade estação "
        "amigo trabalho escola crianças cão gato pássaro sol chuva vento música falar "
        "ouvir ir vir obrigado talvez sempre nunca doze cem olá".split()
    ),
    "nl": tuple(
        "de het een en ik jij wij huis boom water brood morgen avond vandaag gisteren snel "
        "langzaam groot klein rood blauw groen raam deur tafel stoel tuin stad station "
        "vriend werk school kinderen hond kat vogel zon regen wind muziek praten luisteren "
        "gaan komen dank misschien altijd nooit twaalf honderd hallo".split()
    ),
    "pl": tuple(
        "i ja ty my dom drzewo woda chleb jutro wieczór dzisiaj wczoraj szybko wolno duży "
        "mały czerwony niebieski zielony okno drzwi stół krzesło ogród miasto dworzec "
        "przyjaciel praca szkoła dzieci pies kot ptak słońce deszcz wiatr muzyka mówić "
        "słuchać iść przyjść dziękuję może zawsze nigdy dwanaście sto cześć".split()
    ),
    "sv": tuple(
        "och jag du vi hus träd vatten bröd imorgon kväll idag igår snabb långsam stor "
        "liten röd blå grön fönster dörr bord stol trädgård stad station vän arbete skola "
        "barn hund katt fågel sol regn vind musik prata lyssna gå komma tack kanske alltid "
        "aldrig tolv hundra hej".split()
    ),
    "ru": tuple(
        "и я ты мы дом дерево вода хлеб завтра вечер сегодня вчера быстро медленно большой "
        "маленький красный синий зелёный окно дверь стол стул сад город вокзал друг работа "
        "школа дети собака кошка птица солнце дождь ветер музыка говорить слушать идти "
        "спасибо может всегда никогда двенадцать сто привет".split()
    ),
}

# (espeak-ng voice, word-list key or None for random syllables)
_VOICES: tuple[tuple[str, str | None], ...] = (
    ("en", "en"),
    ("en-us", "en"),
    ("en-gb-x-rp", "en"),
    ("en-gb-scotland", "en"),
    ("en-029", "en"),
    ("de", "de"),
    ("fr-fr", "fr"),
    ("es", "es"),
    ("es-419", "es"),
    ("it", "it"),
    ("pt", "pt"),
    ("pt-br", "pt"),
    ("nl", "nl"),
    ("pl", "pl"),
    ("sv", "sv"),
    ("ru", "ru"),
    ("fi", None),
    ("cs", None),
    ("hu", None),
    ("tr", None),
    ("id", None),
    ("sw", None),
    ("da", None),
    ("ro", None),
    ("hr", None),
)

# Variant files shipped with Debian espeak-ng (names are case-sensitive; an unknown variant is
# silently ignored by espeak-ng, which is why this list is checked by a test).
_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "Andy", "Annie", "Alicia", "adam", "aunty", "belinda",
    "benjamin", "david", "edward", "john", "linda", "max", "Michael", "michel", "norbert",
    "paul", "quincy", "robert", "steph", "travis", "victor", "grandma", "grandpa",
)  # fmt: skip

_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiou"


@functools.lru_cache(maxsize=1)
def _espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError("espeak-ng not found: install it with `apt-get install espeak-ng`")
    return path


@functools.lru_cache(maxsize=64)
def _espeak(voice: str, wpm: int, pitch: int, word_gap: int, text: str) -> tuple[np.ndarray, int]:
    """Run espeak-ng once; returns (read-only float32 samples, sample rate)."""
    import soundfile

    cmd = [_espeak_binary(), "--stdout", "-v", voice, "-s", str(wpm), "-p", str(pitch)]
    cmd += ["-g", str(word_gap), "--", text]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        msg = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {msg or 'no audio'}")
    data, sr = soundfile.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=False)
    if data.ndim > 1:
        data = data.mean(axis=1)
    data.setflags(write=False)
    return data, int(sr)


def _random_text(rng: np.random.Generator, words_key: str | None, num_words: int) -> str:
    if words_key is not None:
        words = _WORDS[words_key]
        return " ".join(words[i] for i in rng.integers(0, len(words), size=num_words))
    out = []
    for _ in range(num_words):
        syllables = int(rng.integers(1, 4))
        w = ""
        for _ in range(syllables):
            w += _CONSONANTS[int(rng.integers(len(_CONSONANTS)))]
            w += _VOWELS[int(rng.integers(len(_VOWELS)))]
            if rng.random() < 0.3:
                w += _CONSONANTS[int(rng.integers(len(_CONSONANTS)))]
        out.append(w)
    return " ".join(out)


def _resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return np.asarray(x, dtype=np.float64)
    ratio = Fraction(to_rate, from_rate)
    return scipy.signal.resample_poly(
        np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator
    )


def _normalize_peak(x: np.ndarray, peak: float = _PEAK) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m > 0:
        x = x * (peak / m)
    return x.astype(np.float32)


def _fade(x: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """Raised-cosine fade-in/out in place on a float64 array; returns x."""
    n_in = min(n_in, x.shape[0])
    n_out = min(n_out, x.shape[0])
    if n_in > 0:
        x[:n_in] *= 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_in) + 0.5) / n_in)
    if n_out > 0:
        x[x.shape[0] - n_out :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(n_out) + 0.5) / n_out)
    return x


def speech_source(rng: np.random.Generator, duration_s: float, sample_rate: int) -> np.ndarray:
    """Synthetic speech from espeak-ng: random voice, variant, rate, pitch and words.

    Utterances of 2-9 random words (from a per-language word list, or random syllables) are
    concatenated with random pauses (0.1-0.6 s, plus a 0-0.3 s lead-in) until ``duration_s`` is
    filled; the last utterance is cut with a short fade. Peak-normalised to 0.5.

    Returns float32 ``[shape=(samples,)]`` with ``samples = round(duration_s * sample_rate)``.
    Raises RuntimeError when espeak-ng is not installed.
    """
    n = _num_samples(duration_s, sample_rate)
    out = np.zeros(n, dtype=np.float64)
    voice, words_key = _VOICES[int(rng.integers(len(_VOICES)))]
    if rng.random() < 0.75:
        voice = f"{voice}+{_VARIANTS[int(rng.integers(len(_VARIANTS)))]}"
    wpm = int(rng.integers(120, 221))
    pitch = int(rng.integers(20, 81))
    pos = int(rng.uniform(0.0, 0.3) * sample_rate)
    silent = 0
    while pos < n:
        text = _random_text(rng, words_key, int(rng.integers(2, 10)))
        word_gap = int(rng.integers(0, 4))
        raw, raw_rate = _espeak(voice, wpm, pitch, word_gap, text)
        utt = _resample(raw, raw_rate, sample_rate)
        # espeak-ng pads utterances with silence; trim it so that pauses are ours
        active = np.flatnonzero(np.abs(utt) > 1e-3 * (np.max(np.abs(utt)) + 1e-12))
        if active.size == 0:
            silent += 1
            if silent > 20:
                raise RuntimeError(f"espeak-ng produced only silence for voice {voice!r}")
            continue
        utt = utt[active[0] : active[-1] + 1].copy()
        take = min(utt.shape[0], n - pos)
        seg = utt[:take]
        if take < utt.shape[0]:
            _fade(seg, 0, min(take, int(0.02 * sample_rate)))
        out[pos : pos + take] += seg
        pos += take + int(rng.uniform(0.1, 0.6) * sample_rate)
    return _normalize_peak(out)


def _colored_noise(rng: np.random.Generator, n: int, exponent: float, sample_rate: int) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    white = rng.standard_normal(n)
    if exponent == 0:
        return white / (np.std(white) + 1e-12)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    f[0] = f[1] if n > 1 else 1.0
    spec *= np.maximum(f, 20.0) ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-12)


def noise_burst_source(rng: np.random.Generator, duration_s: float, sample_rate: int) -> np.ndarray:
    """Broadband noise bursts: white/pink/brown or band-passed, amplitude-modulated.

    Bursts of 0.05-0.8 s with random attack/release, tremolo (2-20 Hz) and level (0-12 dB down)
    alternate with gaps of 0.05-0.5 s. Peak-normalised to 0.5.

    Returns float32 ``[shape=(samples,)]``.
    """
    n = _num_samples(duration_s, sample_rate)
    out = np.zeros(n, dtype=np.float64)
    pos = int(rng.uniform(0.0, 0.2) * sample_rate)
    nyq = sample_rate / 2.0
    while pos < n:
        length = max(8, int(rng.uniform(0.05, 0.8) * sample_rate))
        kind = int(rng.integers(4))
        x = _colored_noise(rng, length, (0.0, 1.0, 2.0, 0.0)[kind], sample_rate)
        if kind == 3:  # band-passed white noise
            lo = rng.uniform(100.0, 0.5 * nyq)
            hi = min(lo * rng.uniform(1.5, 6.0), 0.95 * nyq)
            sos = scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
            x = scipy.signal.sosfilt(sos, x)
        t = np.arange(length) / sample_rate
        rate = rng.uniform(2.0, 20.0)
        depth = rng.uniform(0.0, 1.0)
        x *= 1.0 - depth * 0.5 * (1.0 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
        attack = int(rng.uniform(0.002, 0.05) * sample_rate)
        release = int(rng.uniform(0.005, 0.2) * sample_rate)
        _fade(x, min(attack, length // 2), min(release, length // 2))
        x *= 10.0 ** (-rng.uniform(0.0, 12.0) / 20.0)
        take = min(length, n - pos)
        out[pos : pos + take] += x[:take]
        pos += length + int(rng.uniform(0.05, 0.5) * sample_rate)
    return _normalize_peak(out)


def stationary_noise_source(rng: np.random.Generator, duration_s: float, sample_rate: int) -> np.ndarray:
    """Stationary machine noise, the directional interferer of a room: fan, motor, HVAC vent.

    White to brown noise (sometimes band-passed), plus for half of them the hum of a motor (2-8
    harmonics of a 50-400 Hz fundamental), with a slow amplitude drift (0.1-2 Hz, up to 20 %). It
    runs for the whole duration without onsets or pauses, which is what tells it apart from a
    target; unit RMS, so callers set its level against the targets' in RMS (a peak-normalised
    noise sits only a few dB below a peak-normalised talker in RMS).

    Returns float32 ``[shape=(samples,)]``.
    """
    n = _num_samples(duration_s, sample_rate)
    x = _colored_noise(rng, n, float(rng.uniform(0.0, 2.0)), sample_rate)
    nyq = sample_rate / 2.0
    if rng.random() < 0.4:
        lo = rng.uniform(80.0, 0.4 * nyq)
        hi = min(lo * rng.uniform(2.0, 10.0), 0.95 * nyq)
        x = scipy.signal.sosfilt(scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos"), x)
        x /= np.std(x) + 1e-12
    t = np.arange(n) / sample_rate
    if rng.random() < 0.5:
        f0 = rng.uniform(50.0, 400.0)
        harmonics = [k for k in range(1, int(rng.integers(2, 9)) + 1) if k * f0 < 0.95 * nyq]
        hum = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
                  for k in harmonics)
        x = x + rng.uniform(0.5, 2.0) * hum / (np.std(hum) + 1e-12)
    x *= 1.0 + rng.uniform(0.0, 0.2) * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * t + rng.uniform(0, 2 * np.pi))
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def _formant_filter(rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Parallel bank of 2-4 second-order resonators at vowel-like formant frequencies."""
    nyq = sample_rate / 2.0
    centres = [rng.uniform(300, 900), rng.uniform(900, 2500), rng.uniform(2000, 3500), rng.uniform(3300, 4500)]
    y = np.zeros_like(x)
    for k, fc in enumerate(centres[: int(rng.integers(2, 5))]):
        if fc >= 0.9 * nyq:
            continue
        bw = rng.uniform(60.0, 250.0)
        b, a = scipy.signal.iirpeak(fc, fc / bw, fs=sample_rate)
        y += scipy.signal.lfilter(b, a, x) * 10.0 ** (-6.0 * k / 20.0)
    return y + 0.05 * x


def harmonic_source(rng: np.random.Generator, duration_s: float, sample_rate: int) -> np.ndarray:
    """Harmonic tones (voice/instrument-like) with onsets and offsets.

    Each note: f0 log-uniform in 80-400 Hz with a slow glide and vibrato (4-7 Hz, 0-3 %),
    harmonics up to 0.45 * sample_rate with a random spectral roll-off, formant-like resonances,
    a little breath noise and an attack/release envelope; notes of 0.15-1.5 s are separated by
    gaps of 0.05-0.6 s (sometimes overlapping). Peak-normalised to 0.5.

    Returns float32 ``[shape=(samples,)]``.
    """
    n = _num_samples(duration_s, sample_rate)
    out = np.zeros(n, dtype=np.float64)
    pos = int(rng.uniform(0.0, 0.2) * sample_rate)
    while pos < n:
        length = max(16, int(rng.uniform(0.15, 1.5) * sample_rate))
        t = np.arange(length) / sample_rate
        f0 = math.exp(rng.uniform(math.log(80.0), math.log(400.0)))
        glide = rng.uniform(-0.15, 0.15)  # fractional change over the note
        vib_rate = rng.uniform(4.0, 7.0)
        vib_depth = rng.uniform(0.0, 0.03)
        inst_f0 = f0 * (1.0 + glide * t / t[-1]) * (
            1.0 + vib_depth * np.sin(2 * np.pi * vib_rate * t + rng.uniform(0, 2 * np.pi))
        )
        phase = 2 * np.pi * np.cumsum(inst_f0) / sample_rate
        max_f0 = float(inst_f0.max())
        n_harm = max(1, int(0.45 * sample_rate / max_f0))
        rolloff = rng.uniform(0.5, 2.0)
        k = np.arange(1, n_harm + 1)
        amps = k ** (-rolloff) * rng.uniform(0.5, 1.0, size=n_harm)
        phases = rng.uniform(0, 2 * np.pi, size=n_harm)
        x = np.zeros(length)
        for kk, a, p in zip(k, amps, phases):
            x += a * np.sin(kk * phase + p)
        x += rng.uniform(0.0, 0.05) * _colored_noise(rng, length, 0.0, sample_rate) * np.max(np.abs(x))
        if rng.random() < 0.8:
            x = _formant_filter(rng, x, sample_rate)
        attack = int(rng.uniform(0.005, 0.1) * sample_rate)
        release = int(rng.uniform(0.01, 0.3) * sample_rate)
        _fade(x, min(attack, length // 2), min(release, length // 2))
        x /= np.max(np.abs(x)) + 1e-12
        x *= 10.0 ** (-rng.uniform(0.0, 10.0) / 20.0)
        take = min(length, n - pos)
        out[pos : pos + take] += x[:take]
        gap = rng.uniform(-0.1, 0.6) if rng.random() < 0.2 else rng.uniform(0.05, 0.6)
        pos += max(1, length + int(gap * sample_rate))
    return _normalize_peak(out)


def random_dry_source(
    rng: np.random.Generator, duration_s: float, sample_rate: int, speech_prob: float = 0.7
) -> np.ndarray:
    """One of :func:`speech_source` (probability ``speech_prob``), :func:`noise_burst_source` or
    :func:`harmonic_source` (the rest, equally). Returns float32 ``[shape=(samples,)]``."""
    u = rng.random()
    if u < speech_prob:
        return speech_source(rng, duration_s, sample_rate)
    if u < speech_prob + 0.5 * (1.0 - speech_prob):
        return noise_burst_source(rng, duration_s, sample_rate)
    return harmonic_source(rng, duration_s, sample_rate)


# ---------------------------------------------------------------------------------------------
# Noise fields
# ---------------------------------------------------------------------------------------------


def _diffuse_mixing(
    mic_positions: np.ndarray, frame: int, sample_rate: int, speed_of_sound: float
) -> np.ndarray:
    """Per-bin real mixing matrices A with A A^T = spherically-isotropic coherence.

    Coherence between mics i and j at frequency f: sinc(2 pi f d_ij / c), on the ``frame``-point
    rfft grid. Returns ``[shape=(frame // 2 + 1, mics, mics)]`` float64.
    """
    mics = _as_mic_positions(mic_positions)
    d = np.linalg.norm(mics[:, None, :] - mics[None, :, :], axis=-1)
    f = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    gamma = np.sinc(2.0 * f[:, None, None] * d[None, :, :] / speed_of_sound)
    w, v = np.linalg.eigh(gamma)
    return v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def _diffuse_frame(sample_rate: int) -> int:
    """STFT frame for diffuse-noise synthesis: ~16 Hz resolution (1024 points at 16 kHz)."""
    return max(256, 1 << int(math.ceil(math.log2(sample_rate / 16.0))))


def _diffuse_synth(
    mixing: np.ndarray, num_samples: int, sample_rate: int, rng: np.random.Generator, exponent: float
) -> np.ndarray:
    """Stationary Gaussian noise with the cross-spectral coherence given by ``mixing``.

    Independent complex Gaussian STFT frames are mixed per bin, then overlap-added at 50 % with a
    sqrt-Hann window (whose square sums to one, so the power is constant in time). Spectrum
    ~ 1/f**exponent. Returns float64 ``[shape=(num_samples, mics)]``, mean power 1.
    """
    n_bins, m, _ = mixing.shape
    frame = 2 * (n_bins - 1)
    hop = frame // 2
    n_frames = int(math.ceil(num_samples / hop)) + 2
    w = rng.standard_normal((n_frames, n_bins, m)) + 1j * rng.standard_normal((n_frames, n_bins, m))
    spec = np.einsum("fij,tfj->tfi", mixing, w)
    f = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    gain = np.maximum(f, 20.0) ** (-exponent / 2.0) if exponent != 0 else np.ones_like(f)
    gain[0] = 0.0
    spec *= gain[None, :, None]
    frames = np.fft.irfft(spec, frame, axis=1)  # (n_frames, frame, mics)
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame))
    frames *= window[None, :, None]
    out = np.zeros(((n_frames + 1) * hop, m))
    for t in range(n_frames):
        out[t * hop : t * hop + frame] += frames[t]
    x = out[hop : hop + num_samples]  # skip the first half frame, where the windows don't sum to 1
    return x / (np.sqrt(np.mean(x**2)) + 1e-20)


def diffuse_noise(
    mic_positions: np.ndarray,
    num_samples: int,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    speed_of_sound: float = 343.0,
    spectrum: str = "pink",
) -> np.ndarray:
    """Spherically-isotropic (diffuse) noise at the microphones.

    Gaussian noise whose coherence between every pair of mics is the diffuse-field
    sinc(2 pi f d / c): the coherence matrix is factored per frequency bin (eigen-decomposition,
    ~16 Hz bins) and applied to independent STFT frames, overlap-added. ``spectrum``: "white",
    "pink" or "brown". Mean power over mics is 1.

    ``mic_positions`` ``[shape=(mics, 3)]``; returns float32 ``[shape=(num_samples, mics)]``.
    """
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if spectrum not in exponents:
        raise ValueError(f"spectrum must be one of {sorted(exponents)}, got {spectrum!r}")
    if num_samples <= 0:
        raise ValueError("num_samples must be positive")
    mixing = _diffuse_mixing(mic_positions, _diffuse_frame(sample_rate), sample_rate, speed_of_sound)
    x = _diffuse_synth(mixing, num_samples, sample_rate, rng, exponents[spectrum])
    return x.astype(np.float32)


def _add_sensor_noise(
    clean: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    power = float(np.mean(clean.astype(np.float64) ** 2))
    sigma = math.sqrt(power * 10.0 ** (-snr_db / 10.0))
    return clean + sigma * rng.standard_normal(clean.shape)


# ---------------------------------------------------------------------------------------------
# Free field
# ---------------------------------------------------------------------------------------------


def free_field_scene(
    mic_positions: np.ndarray,
    sources: list[tuple[np.ndarray, float, float]],
    sample_rate: int,
    speed_of_sound: float = 343.0,
    snr_db: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Far-field plane waves at the microphones, with exact fractional delays.

    Each source is ``(signal [shape=(samples,)], azimuth_deg, elevation_deg)``. The wave from unit
    direction d reaches the mic at position r earlier than the array origin by r . d / c; the
    delay is applied as a linear phase in the frequency domain (ideal band-limited interpolation)
    on a buffer zero-padded on both sides by more than the largest shift, so nothing wraps
    around (bar the far sinc tails, ~1e-4 of the peak). Signals shorter than the longest are
    zero-padded at the end. With ``snr_db``, independent white Gaussian noise is added to every
    mic at that SNR relative to the mean signal power over all mics (``rng`` is then required).

    ``mic_positions`` ``[shape=(mics, 3)]``; returns float32 ``[shape=(samples, mics)]``.
    """
    mics = _as_mic_positions(mic_positions)
    if not sources:
        raise ValueError("free_field_scene needs at least one source")
    sigs = [_as_signal(s[0], f"source {i} signal") for i, s in enumerate(sources)]
    n = max(s.shape[0] for s in sigs)
    out = np.zeros((n, mics.shape[0]), dtype=np.float64)
    for sig, (_, az, el) in zip(sigs, sources):
        tau = mics @ direction_vector(az, el) / speed_of_sound  # advance of each mic (s)
        # zero-pad both sides by more than the largest shift: the band-limited delay then acts
        # on the zero-extended signal (only the far sinc tails wrap, at ~1e-4). The FFT size
        # depends on this source alone, so scenes superpose exactly.
        pad = int(math.ceil(float(np.max(np.abs(tau))) * sample_rate)) + 1024
        nfft = scipy.fft.next_fast_len(sig.shape[0] + 2 * pad, real=True)
        f = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
        buf = np.zeros(nfft)
        buf[pad : pad + sig.shape[0]] = sig
        spec = scipy.fft.rfft(buf)
        # advance by tau: x_m(t) = s(t + tau_m)  <=>  S(f) exp(+j 2 pi f tau_m)
        phase = np.exp(2j * np.pi * f[:, None] * tau[None, :])
        if nfft % 2 == 0:  # Nyquist bin must stay real: keep the symmetric (cosine) part
            phase[-1] = phase[-1].real
        y = scipy.fft.irfft(spec[:, None] * phase, nfft, axis=0)
        take = min(n, sig.shape[0] + pad)
        out[:take] += y[pad : pad + take]
    if snr_db is not None:
        if rng is None:
            raise ValueError("free_field_scene: rng is required when snr_db is set")
        out = _add_sensor_noise(out, snr_db, rng)
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Rooms
# ---------------------------------------------------------------------------------------------

#: Image-source order above which the room impulse response is completed by a diffuse tail.
#: Order 40 keeps the image-source stage well under a second for 8 mics and makes the image set
#: complete up to 0.8 * 40 * R_min / c (~170 ms in a 3 x 3 x 2.5 m room, ~330 ms in 10 x 8 x 4 m),
#: so direct path and early reflections are always exact.
ISM_ORDER_CAP = 40

_WALL_MARGIN_SOURCE = 0.3
_WALL_MARGIN_ARRAY = 0.5
_MIN_SOURCE_DISTANCE = 0.5
_ROOM_MIN = (3.0, 3.0, 2.5)
_ROOM_MAX = (10.0, 8.0, 4.0)


@dataclass(frozen=True, eq=False)
class SourceSpec:
    """A point source for :func:`room_scene`: dry ``signal`` ``[shape=(samples,)]`` at a
    direction and distance from the array centre (array frame = room axes)."""

    signal: np.ndarray
    azimuth_deg: float
    elevation_deg: float
    distance_m: float = 1.5


@dataclass(eq=False)
class SceneResult:
    """Output of :func:`room_scene`.

    ``audio`` float32 ``[shape=(samples, mics)]``: what the array records (reverberant sources,
    diffuse noise, sensor noise). ``clean`` float32 ``[shape=(samples, mics)]``: the reverberant
    sources alone. ``sources``: true ``(azimuth_deg, elevation_deg, distance_m)`` of each source in
    the array frame, from the actual positions (the distance may be smaller than requested when the
    source had to be moved inside the room). ``source_positions`` ``[shape=(sources, 3)]`` and
    ``array_centre`` ``[shape=(3,)]`` are room coordinates (metres from the room corner).
    """

    audio: np.ndarray
    sample_rate: int
    sources: list[tuple[float, float, float]]
    room_dim: tuple[float, float, float]
    rt60: float
    array_centre: np.ndarray
    source_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    clean: np.ndarray | None = None
    snr_db: float | None = None
    diffuse_noise_db: float | None = None
    ism_order: int = 0


def _r_min(room_dim: np.ndarray) -> float:
    return min(a * b / math.hypot(a, b) for a, b in itertools.combinations(room_dim, 2))


def _max_distance_inside(centre: np.ndarray, d: np.ndarray, room_dim: np.ndarray, margin: float) -> float:
    """Largest t >= 0 with centre + t d inside [margin, dim - margin] on every axis."""
    t = math.inf
    for i in range(3):
        if d[i] > 1e-12:
            t = min(t, (room_dim[i] - margin - centre[i]) / d[i])
        elif d[i] < -1e-12:
            t = min(t, (margin - centre[i]) / d[i])
    return t


def _array_margins(mics: np.ndarray) -> np.ndarray:
    return np.maximum(_WALL_MARGIN_ARRAY, np.max(np.abs(mics), axis=0) + 0.05)


def _sample_centre(rng: np.random.Generator, room_dim: np.ndarray, margins: np.ndarray) -> np.ndarray:
    lo = margins.copy()
    hi = room_dim - margins
    if np.any(hi < lo):
        raise ValueError(
            f"room {tuple(float(v) for v in room_dim)} is too small for the array "
            f"(needs {tuple(float(2 * v) for v in margins)} m)"
        )
    z_lo = min(max(0.7, lo[2]), hi[2])
    z_hi = max(min(1.8, hi[2]), z_lo)
    return np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), rng.uniform(z_lo, z_hi)])


def _place_sources(
    centre: np.ndarray, room_dim: np.ndarray, sources: list[SourceSpec]
) -> tuple[list[np.ndarray], float]:
    """Positions (shrunk to fit) and the smallest ratio of actual to requested distance."""
    positions = []
    worst = 1.0
    for i, s in enumerate(sources):
        d = direction_vector(s.azimuth_deg, s.elevation_deg)
        t_max = _max_distance_inside(centre, d, room_dim, _WALL_MARGIN_SOURCE)
        dist = min(float(s.distance_m), t_max)
        if dist < _MIN_SOURCE_DISTANCE:
            raise ValueError(
                f"source {i} (azimuth {s.azimuth_deg:g}, elevation {s.elevation_deg:g}) cannot be "
                f"placed >= {_MIN_SOURCE_DISTANCE} m from the array and >= {_WALL_MARGIN_SOURCE} m "
                f"from the walls of room {tuple(round(float(v), 3) for v in room_dim)}"
            )
        worst = min(worst, dist / float(s.distance_m))
        positions.append(centre + dist * d)
    return positions, worst


def _late_tail_rir(
    h_ism: np.ndarray,
    t_complete: float,
    rt60: float,
    sample_rate: int,
    offset: int,
    tail: np.ndarray,
) -> np.ndarray:
    """Splice a diffuse exponentially-decaying tail onto image-source RIRs.

    ``h_ism`` ``[shape=(mics, taps)]``; ``t_complete``: time (s from emission) up to which the image
    set is complete; ``offset``: pyroomacoustics' global delay in samples; ``tail``
    ``[shape=(tail_samples, mics)]`` unit-power diffuse noise. Returns ``[shape=(mics, taps')]``.
    """
    i_c = offset + int(round(t_complete * sample_rate))
    delta = 3.0 * math.log(10.0) / rt60  # amplitude decay rate (1/s): -60 dB energy in rt60
    win = max(int(0.02 * sample_rate), int(0.25 * t_complete * sample_rate))
    win = min(win, i_c - offset)
    seg = h_ism[:, max(0, i_c - win) : i_c]
    energy = float(np.mean(seg**2)) if seg.size else 0.0
    w_s = win / sample_rate
    g = 2.0 * delta * w_s
    level = math.sqrt(energy * g / math.expm1(g)) if g > 0 else math.sqrt(energy)
    xf = max(2, int(0.005 * sample_rate))
    start = i_c - xf // 2
    n_tail = tail.shape[0]
    t = (np.arange(n_tail) + start - i_c) / sample_rate
    late = tail.T * (level * np.exp(-delta * t))[None, :]
    out = np.zeros((h_ism.shape[0], start + n_tail))
    keep = min(start + xf, h_ism.shape[1])
    out[:, :keep] = h_ism[:, :keep]
    ramp = (np.arange(xf) + 0.5) / xf
    fade_out = np.cos(0.5 * np.pi * ramp)
    fade_in = np.sin(0.5 * np.pi * ramp)
    out[:, start : start + xf] *= fade_out[None, :]
    late[:, :xf] *= fade_in[None, :]
    out[:, start:] += late
    return out


def room_scene(
    mic_positions: np.ndarray,
    sources: list[SourceSpec],
    *,
    sample_rate: int,
    rt60: float,
    room_dim: tuple[float, float, float] | None = None,
    snr_db: float | None = 30.0,
    rng: np.random.Generator,
    diffuse_noise_db: float | None = None,
    max_order: int | None = None,
    speed_of_sound: float = 343.0,
    array_centre: np.ndarray | None = None,
    late_reverb: bool = True,
) -> SceneResult:
    """Reverberant shoebox room: sources at given directions/distances from the array.

    The array frame axes equal the room axes. The array centre is drawn at random (>= 0.5 m from
    every wall, height 0.7-1.8 m clipped to the room; up to 50 draws are tried to fit every source
    at its requested distance) unless ``array_centre`` (room coordinates) is given. Each source is
    placed at centre + distance * direction; if that is not >= 0.3 m inside every wall the distance
    is shrunk (not below 0.5 m, else ValueError) and the actual distance is reported.
    ``room_dim`` is drawn between 3 x 3 x 2.5 and 10 x 8 x 4 m when None.

    Walls get the energy absorption of Sabine's formula for ``rt60``
    (``pyroomacoustics.inverse_sabine``); image sources up to ``max_order`` (default: what
    ``rt60`` needs, capped at :data:`ISM_ORDER_CAP`) give the early response; if that order is
    below what ``rt60`` needs and ``late_reverb`` is True, a diffuse tail decaying at exactly
    ``rt60`` completes the response. No air absorption, no randomised ISM, no ray tracing.

    Noise: ``snr_db`` sets white sensor noise (independent per mic) and ``diffuse_noise_db``
    spherically-isotropic pink noise, each as a ratio in dB of the mean reverberant source power at
    the mics to that noise's power (higher = quieter noise; None = none).

    The output is aligned with the dry signals: pyroomacoustics' filter delay and the integer
    part of each source's propagation delay to the array centre are removed, and it is trimmed
    to the longest dry signal.

    ``mic_positions`` ``[shape=(mics, 3)]`` in the array frame.
    """
    import pyroomacoustics as pra

    mics = _as_mic_positions(mic_positions)
    if not sources:
        raise ValueError("room_scene needs at least one source")
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    sigs = [_as_signal(s.signal, f"source {i} signal") for i, s in enumerate(sources)]
    for i, s in enumerate(sources):
        if not s.distance_m > 0:
            raise ValueError(f"source {i}: distance_m must be positive, got {s.distance_m}")
    n = max(s.shape[0] for s in sigs)
    margins = _array_margins(mics)

    # room and wall absorption
    for attempt in range(100):
        if room_dim is None:
            dim = np.array([rng.uniform(a, b) for a, b in zip(_ROOM_MIN, _ROOM_MAX)])
            if attempt:  # the room was too large for a short rt60: shrink the draw
                dim = np.maximum(np.array(_ROOM_MIN), dim * 0.97**attempt)
        else:
            dim = np.asarray(room_dim, dtype=np.float64).reshape(3)
        try:
            e_absorption, needed_order = pra.inverse_sabine(rt60, dim, c=speed_of_sound)
            break
        except ValueError as exc:
            if room_dim is not None or attempt == 99:
                raise ValueError(
                    f"rt60 {rt60} s is too short for room {tuple(float(v) for v in dim)} "
                    f"(Sabine absorption > 1): {exc}"
                ) from None

    # array centre and source positions
    if array_centre is not None:
        centre = np.asarray(array_centre, dtype=np.float64).reshape(3)
        if np.any(centre + mics.min(axis=0) <= 0) or np.any(centre + mics.max(axis=0) >= dim):
            raise ValueError("array_centre puts microphones outside the room")
        positions, _ = _place_sources(centre, dim, sources)
    else:
        best = None
        for _ in range(50):
            centre = _sample_centre(rng, dim, margins)
            try:
                positions, worst = _place_sources(centre, dim, sources)
            except ValueError as exc:
                if best is None:
                    best = (None, None, -1.0, exc)
                continue
            if best is None or worst > best[2]:
                best = (centre, positions, worst, None)
            if worst >= 1.0:
                break
        if best[0] is None:
            raise best[3]
        centre, positions = best[0], best[1]

    order = needed_order if max_order is None else int(max_order)
    if max_order is None:
        order = min(order, ISM_ORDER_CAP)
    order = max(order, 0)
    add_tail = late_reverb and order < needed_order

    room = pra.ShoeBox(
        dim,
        fs=sample_rate,
        materials=pra.Material(e_absorption),
        max_order=order,
        air_absorption=False,
        ray_tracing=False,
        use_rand_ism=False,
    )
    room.set_sound_speed(speed_of_sound)
    for p in positions:
        room.add_source(p)
    room.add_microphone_array((centre[None, :] + mics).T)
    room.compute_rir()

    offset = pra.constants.get("frac_delay_length") // 2
    n_mics = mics.shape[0]
    mixing = _diffuse_mixing(mics, _diffuse_frame(sample_rate), sample_rate, speed_of_sound)
    if add_tail:
        n_tail = int(math.ceil(rt60 * sample_rate)) + int(0.01 * sample_rate)
        direct_max = max(
            float(np.max(np.linalg.norm(centre + mics - p, axis=1))) for p in positions
        ) / speed_of_sound
        t_complete = max(0.8 * order * _r_min(dim) / speed_of_sound, direct_max + 0.02)

    clean = np.zeros((n, n_mics), dtype=np.float64)
    for s, (sig, p) in enumerate(zip(sigs, positions)):
        taps = max(len(room.rir[m][s]) for m in range(n_mics))
        h = np.zeros((n_mics, taps))
        for m in range(n_mics):
            r = room.rir[m][s]
            h[m, : len(r)] = r
        if add_tail:
            tail = _diffuse_synth(mixing, n_tail, sample_rate, rng, 0.0)
            h = _late_tail_rir(h, t_complete, rt60, sample_rate, offset, tail)
        shift = offset + int(round(np.linalg.norm(p - centre) / speed_of_sound * sample_rate))
        nfft = scipy.fft.next_fast_len(sig.shape[0] + h.shape[1] - 1, real=True)
        y = scipy.fft.irfft(
            scipy.fft.rfft(h, nfft, axis=1) * scipy.fft.rfft(sig, nfft)[None, :], nfft, axis=1
        )
        seg = y[:, shift : shift + n]
        clean[: seg.shape[1]] += seg.T

    audio = clean.copy()
    signal_power = float(np.mean(clean**2))
    if diffuse_noise_db is not None:
        noise = _diffuse_synth(mixing, n, sample_rate, rng, 1.0)
        audio += noise * math.sqrt(signal_power * 10.0 ** (-diffuse_noise_db / 10.0))
    if snr_db is not None:
        audio += math.sqrt(signal_power * 10.0 ** (-snr_db / 10.0)) * rng.standard_normal(audio.shape)

    true_dirs = []
    for p in positions:
        v = p - centre
        az, el = vector_to_angles(v)
        true_dirs.append((az, el, float(np.linalg.norm(v))))

    return SceneResult(
        audio=audio.astype(np.float32),
        sample_rate=int(sample_rate),
        sources=true_dirs,
        room_dim=tuple(float(v) for v in dim),
        rt60=float(rt60),
        array_centre=centre,
        source_positions=np.array(positions, dtype=np.float64).reshape(-1, 3),
        clean=clean.astype(np.float32),
        snr_db=snr_db,
        diffuse_noise_db=diffuse_noise_db,
        ism_order=order,
    )


# ---------------------------------------------------------------------------------------------
# Moving sources
# ---------------------------------------------------------------------------------------------


@dataclass
class MovingSceneResult:
    """Output of :func:`moving_source_scene`.

    ``scene``: the room scene (``scene.audio`` float32 ``[shape=(samples, mics)]``, ...); its
    ``sources`` list the static sources first, then one entry per segment of the moving source.
    ``times_s``, ``azimuth_deg``, ``elevation_deg`` ``[shape=(segments,)]``: centre time of each
    segment and the moving source's true direction during it (azimuth unwrapped, i.e. continuous).
    """

    scene: SceneResult
    times_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    static_sources: int = 0

    def direction_at(self, t_s) -> tuple[np.ndarray, np.ndarray]:
        """True ``(azimuth_deg in (-180, 180], elevation_deg)`` of the moving source at times
        ``t_s`` (seconds, scalar or array), interpolated between segment centres."""
        az = np.interp(t_s, self.times_s, self.azimuth_deg)
        el = np.interp(t_s, self.times_s, self.elevation_deg)
        az = 180.0 - np.mod(180.0 - az, 360.0)  # (-180, 180]
        return az, el


def moving_source_scene(
    mic_positions: np.ndarray,
    signal: np.ndarray,
    path: list[tuple[float, float, float]],
    *,
    sample_rate: int,
    rt60: float,
    rng: np.random.Generator,
    static_sources: list[SourceSpec] = (),
    distance_m: float = 1.5,
    segment_s: float = 0.1,
    **room_kwargs,
) -> MovingSceneResult:
    """A source moving along ``path`` in a :func:`room_scene` room, plus optional static sources.

    ``path``: waypoints ``(time_s, azimuth_deg, elevation_deg)`` with increasing times; the
    direction is interpolated linearly between them (azimuth as given, so 170 → 190 passes behind
    the array) and held before the first and after the last. ``signal [shape=(samples,)]`` is cut
    into raised-cosine segments of ``2 * segment_s`` overlapping by half (they sum to exactly 1);
    each segment is rendered from the path's direction at its centre, at ``distance_m``, through
    the same room as the static sources, so the motion is a cross-faded sequence of steps of
    ``segment_s`` seconds (with every segment's own reverberation). ``room_kwargs`` go to
    :func:`room_scene` (``room_dim``, ``array_centre``, ``snr_db``, ``max_order``, ...).
    """
    sig = _as_signal(signal, "signal")
    way = np.asarray(path, dtype=np.float64)
    if way.ndim != 2 or way.shape[1] != 3 or way.shape[0] < 1 or np.any(np.diff(way[:, 0]) <= 0):
        raise ValueError("path must be a list of (time_s, azimuth_deg, elevation_deg) with increasing times")
    n = sig.shape[0]
    hop = max(1, int(round(segment_s * sample_rate)))
    window = 0.5 - 0.5 * np.cos(np.pi * (np.arange(2 * hop) + 0.5) / hop)
    starts = np.arange(-hop, n, hop)  # segment k covers [start, start + 2 hop)
    total = np.zeros(n)
    for s0 in starts:
        lo, hi = max(0, s0), min(n, s0 + 2 * hop)
        total[lo:hi] += window[lo - s0 : hi - s0]
    specs, times = [], []
    for s0 in starts:
        lo, hi = max(0, s0), min(n, s0 + 2 * hop)
        piece = np.zeros(n)
        piece[lo:hi] = sig[lo:hi] * window[lo - s0 : hi - s0] / total[lo:hi]
        if not np.any(piece):
            continue  # silent segment: nothing to render
        t_c = (s0 + hop) / sample_rate
        az = float(np.interp(t_c, way[:, 0], way[:, 1]))
        el = float(np.interp(t_c, way[:, 0], way[:, 2]))
        specs.append(SourceSpec(piece, az, el, distance_m))
        times.append(t_c)
    statics = list(static_sources)
    scene = room_scene(mic_positions, statics + specs, sample_rate=sample_rate, rt60=rt60, rng=rng, **room_kwargs)
    moving = np.array([s[:2] for s in scene.sources[len(statics) :]], dtype=np.float64).reshape(-1, 2)
    azimuth = np.degrees(np.unwrap(np.radians(moving[:, 0])))
    return MovingSceneResult(scene, np.array(times), azimuth, moving[:, 1], len(statics))


__all__ += ["MovingSceneResult", "moving_source_scene"]
