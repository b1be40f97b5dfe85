"""Dry (anechoic, single-channel) sources: espeak-ng speech, noise bursts, stationary machine
noise, harmonic tones, and a random pick among them.

All are deterministic from the ``numpy.random.Generator`` passed in and return float32
``[shape=(samples,)]`` with ``samples = round(duration_s * sample_rate)``.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import scipy.signal

from arraydaemon.research.simulate.geometry import num_samples

__all__ = [
    "harmonic_source",
    "noise_burst_source",
    "random_dry_source",
    "speech_source",
    "stationary_noise_source",
]


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
    n = num_samples(duration_s, sample_rate)
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
    n = num_samples(duration_s, sample_rate)
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
    n = num_samples(duration_s, sample_rate)
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
    n = num_samples(duration_s, sample_rate)
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
