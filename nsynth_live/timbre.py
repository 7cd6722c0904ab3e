"""Timbre evaluation: does a preset sound like its instrument, and do blends travel between them?

The paper's quantitative test of timbre is a classifier judging reconstructions. Adapted here:

1. An instrument-identity classifier (scikit-learn: standardised features, multinomial logistic
   regression) is trained on the *source notes* of a bank's presets: for each preset, its source
   instrument's own notes over a pitch range, read from the dataset the bank was encoded from.
   Its **ceiling** is how well it tells those sources apart when each pitch is left out in turn
   (trained on the other pitches, judged on the left-out one).
2. It then judges the notes the model renders from each preset over the same pitches:
   **identity accuracy**, separately for presets from training instruments and from held-out
   (valid/test) instruments.
3. **Blends**: along ``mix(a, b, t)`` for t = 0, .25, .5, .75, 1 the classifier's
   P(b) / (P(a) + P(b)), averaged over a few pitches, for preset pairs; a pair passes when it
   never falls (by more than ``BLEND_SLACK``, the classifier's jitter on near-certain verdicts)
   and rises by at least ``BLEND_RISE`` from t = 0 to t = 1 (a flat curve, the classifier hearing
   neither preset, does not pass).

Features describe the held part of a note only, at a normalised level: MFCCs (mean and spread,
c0 dropped), spectral contrast and flatness, centroid / bandwidth / roll-off relative to the
pitch, and the levels of the first harmonics (:func:`nsynth_live.pitch.harmonic_profile`). The
loudness envelope is left out on purpose: every rendered note carries its preset's envelope, so
judging by it would credit the model with what the conditioning alone preserves.

torch-free: the model side comes in through a backend with ``generate(emb, pitch, n, seed,
decoding, voices) -> audio [B, n]`` (:mod:`nsynth_live.evaluate`'s engine and torch backends).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live import SAMPLE_RATE
from nsynth_live.errors import UserError
from nsynth_live.pitch import cents_off, harmonic_profile, note_f0, spread_over_pitches

BLEND_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
BLEND_PITCHES = (48, 60, 72)
BLEND_RISE = 0.2
BLEND_SLACK = 0.02
FEATURE_START_S = 0.25  # after the attack, as the pitch benchmark judges
HARMONICS = 16
CEILING_FOLDS = 7
HELD_OUT_TAGS = ("valid-split", "test-split")


# ----------------------------------------------------------------------------- features


def note_features(audio: np.ndarray, pitch: int, start_s: float = FEATURE_START_S, end_s: float = 2.0,
                  sr: int = SAMPLE_RATE) -> np.ndarray:
    """Level-independent timbre features of a note's held part.

    Args:
        audio: [T] mono float audio of one note.
        pitch: its MIDI pitch (the harmonic levels and the pitch-relative spectral shape use it).
        start_s, end_s: the held region in seconds.
        sr: sample rate.

    Returns:
        float64 [D] feature vector (D = 19 * 2 + 7 + 1 + 3 + HARMONICS = 65); a silent region gives
        the features of silence (all harmonics at the floor), never NaN.
    """
    import librosa

    seg = np.asarray(audio, dtype=np.float64)[int(round(start_s * sr)) : int(round(end_s * sr))]
    rms = float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0
    y = (seg / rms if rms > 1e-6 else np.zeros_like(seg)).astype(np.float32)
    if y.size < 2048:
        raise ValueError(f"note too short for timbre features: {y.size} samples held")
    kw = dict(sr=sr, n_fft=1024, hop_length=256)
    mel = librosa.feature.mfcc(y=y, n_mfcc=20, n_mels=64, **kw)[1:]  # c0 is the level
    spec = np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) + 1e-9
    contrast = librosa.feature.spectral_contrast(S=spec, sr=sr, n_bands=6, fmin=100.0).mean(1)
    flatness = np.log(librosa.feature.spectral_flatness(S=spec).mean() + 1e-9)
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    shape = [np.log(np.mean(f(S=spec, sr=sr)) / f0 + 1e-9) for f in
             (librosa.feature.spectral_centroid, librosa.feature.spectral_bandwidth, librosa.feature.spectral_rolloff)]
    harm = harmonic_profile(seg, sr, pitch, start_s=0.0, end_s=seg.size / sr, harmonics=HARMONICS) / 10.0
    out = np.concatenate([mel.mean(1) / 10.0, mel.std(1) / 10.0, contrast / 10.0, [flatness], shape, harm])
    return np.nan_to_num(out.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)


# ----------------------------------------------------------------------------- classifier


def _classifier() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=300, tol=1e-3))


@dataclass
class IdentityClassifier:
    """Tells a bank's source instruments apart from :func:`note_features`.

    Attributes:
        labels: the class names (preset names), in the classifier's column order.
    """

    labels: list[str]
    model: Any = field(repr=False)

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[str]) -> IdentityClassifier:
        """Train on source notes.

        Args:
            features: [N, D] from :func:`note_features`.
            labels: [N] the preset each note is the source of.
        """
        names = sorted(set(labels))
        if len(names) < 2:
            raise UserError(f"a timbre classifier needs at least two instruments, got {names}")
        model = _classifier().fit(features, [names.index(x) for x in labels])
        return cls(labels=names, model=model)

    def proba(self, features: np.ndarray) -> np.ndarray:
        """[N, D] -> [N, classes] probabilities (columns in :attr:`labels` order)."""
        return self.model.predict_proba(np.atleast_2d(features))


def ceiling(features: np.ndarray, labels: Sequence[str], pitches: Sequence[int],
            folds: int = CEILING_FOLDS) -> tuple[float, np.ndarray]:
    """Leave-pitches-out accuracy of the classifier on the source notes themselves.

    Each of ``folds`` folds leaves out every ``folds``-th pitch (pitch ranks i, i + folds, ...),
    trains on the other pitches and judges the left-out ones, so no note is judged by a
    classifier that saw its pitch (one fold per pitch measures the same within a point, at 7x
    the time).

    Args:
        features: [N, D]; labels: [N] class names; pitches: [N] each note's pitch.
        folds: pitch folds (clipped to the number of distinct pitches).

    Returns:
        (accuracy, predicted class index [N] of each note when its pitch was left out).
    """
    names = sorted(set(labels))
    y = np.array([names.index(x) for x in labels])
    groups = np.asarray(pitches)
    distinct = np.unique(groups)
    fold_of = {q: i % min(folds, len(distinct)) for i, q in enumerate(distinct)}
    fold = np.array([fold_of[q] for q in groups])
    pred = np.empty(len(y), np.int64)
    for f in np.unique(fold):
        test = fold == f
        model = _classifier().fit(features[~test], y[~test])
        # The left-out pitch may lack a class the others have: index through model.classes_.
        pred[test] = model.classes_[np.argmax(model.predict_proba(features[test]), 1)]
    return float(np.mean(pred == y)), pred


# ----------------------------------------------------------------------------- data


def source_stem(preset: Any) -> tuple[str, str] | None:
    """(instrument_str, velocity) of a preset's source note, from its provenance
    (``"<instrument>-<pitch>-<velocity>.wav"``), or None when it names no dataset note."""
    source = str(preset.provenance.get("source", "")) if isinstance(preset.provenance, dict) else ""
    parts = Path(source).stem.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], parts[2]


def note_index(data: Path) -> dict[str, Path]:
    """{file name: path} of every note of an NSynth-layout dataset (``nsynth-*/audio/*.wav``).

    Raises:
        UserError: the dataset holds no notes.
    """
    index = {wav.name: wav for audio_dir in sorted(Path(data).glob("nsynth-*/audio")) for wav in audio_dir.iterdir()}
    if not index:
        raise UserError(f"reference data {data}: no nsynth-*/audio/*.wav notes")
    return index


def load_source_notes(data: Path, presets: Sequence[Any], pitches: Sequence[int]) -> dict[tuple[str, int], np.ndarray]:
    """Each preset's source instrument's own note at each pitch, from an NSynth-layout dataset.

    Returns:
        {(preset name, pitch): [64000] float32}; pitches the instrument lacks are absent.

    Raises:
        UserError: a preset names no source note, or none of its notes is in ``data``.
    """
    import soundfile as sf

    index = note_index(data)
    out: dict[tuple[str, int], np.ndarray] = {}
    for p in presets:
        stem = source_stem(p)
        if stem is None:
            raise UserError(f"preset {p.name!r}: its provenance names no dataset note ({p.provenance!r})")
        found = 0
        for q in pitches:
            wav = index.get(f"{stem[0]}-{q:03d}-{stem[1]}.wav")
            if wav is not None:
                out[(p.name, q)] = sf.read(wav, dtype="float32")[0]
                found += 1
        if not found:
            raise UserError(f"preset {p.name!r}: no note of {stem[0]} at velocity {stem[1]} in {data}")
    return out


def source_keys(src: dict[tuple[str, int], np.ndarray], names: Sequence[str]) -> list[tuple[str, int]]:
    """The (preset, pitch) notes of :func:`load_source_notes` in the order
    :func:`evaluate_timbre` renders them (by preset as ``names`` lists them, then by pitch): note
    i of that order is rendered with noise voice id i."""
    return sorted(src, key=lambda k: (list(names).index(k[0]), k[1]))


def reencode(bank: Any, data: Path, encode: Callable[[np.ndarray], np.ndarray], harmonics: int = 0) -> Any:
    """A copy of ``bank`` whose presets are encoded anew from their source notes in ``data``.

    A training run's encoder moves as it trains, so a candidate is judged on embeddings of its
    own, not on those another model wrote into the bank. Names, tags, regions and provenance stay.

    Args:
        bank: the bank; data: the dataset holding each preset's source note.
        encode: audio [1, T] float32 -> embedding [1, C, F].
        harmonics: K > 0: also measure each source note's first K harmonics and its noise bands
            on the same frames, as ``encode`` stores them for a learned-source model
            (:func:`nsynth_live.host.encode.measured_source`); 0: the presets keep what they carry.
    """
    import dataclasses

    from nsynth_live.host.encode import measured_source

    import soundfile as sf

    index = note_index(data)
    presets = []
    for p in bank.presets:
        name = Path(str(p.provenance.get("source", ""))).name
        if name not in index:
            raise UserError(f"preset {p.name!r}: its source note {name!r} is not in {data}")
        audio = sf.read(index[name], dtype="float32")[0][None]
        emb = np.asarray(encode(audio))[0].T.astype(np.float32)  # [F, C]
        frames = p.embedding.shape[0]
        harm, noise = measured_source(audio[0], p.source_pitch, harmonics, bank.hop, frames) if harmonics \
            else (p.harmonics, p.noise)
        presets.append(dataclasses.replace(p, embedding=emb[:frames], harmonics=harm, noise=noise))
    return dataclasses.replace(bank, presets=presets)


def blend_pairs(presets: Sequence[Any], count: int = 10, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` preset pairs for the blend test, each of two different families where possible.

    Deterministic: a seeded shuffle of the presets, then each preset paired with the next one in
    that order whose family tag (first tag) differs and that is not paired yet.
    """
    rng = np.random.default_rng(seed)
    order = [presets[i] for i in rng.permutation(len(presets))]
    fam = {p.name: (p.tags[0] if p.tags else p.name) for p in order}
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    for a in order:
        if a.name in used:
            continue
        for b in order:
            if b.name != a.name and b.name not in used and fam[b.name] != fam[a.name]:
                pairs.append((a.name, b.name))
                used |= {a.name, b.name}
                break
        if len(pairs) == count:
            return pairs
    # Fewer distinct families than pairs wanted: fill with any unused-pair combinations.
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if len(pairs) < count and (a.name, b.name) not in pairs and (b.name, a.name) not in pairs:
                pairs.append((a.name, b.name))
    return pairs[:count]


# ----------------------------------------------------------------------------- rendering


Render = Callable[..., np.ndarray]
"""(emb [B, C, F], pitch [B], n samples, noise voice ids [B]) -> audio [B, n]; called with
``harmonics=`` float32 [B, F, K'] and ``noise=`` float32 [B, F, BANDS] too (the jobs' measured
harmonics and noise bands, :mod:`nsynth_live.harmonics`, :mod:`nsynth_live.noise`) when the
evaluation plays the presets' measured source."""

Job = tuple[np.ndarray, int, "np.ndarray | None", "np.ndarray | None"]
"""(trajectory [frames, C], pitch, measured harmonics [frames, K'] or None, noise bands
[frames, BANDS] or None)."""


def render_jobs(render: Render, jobs: Sequence[Job], seconds: float, hop: int,
                batch: int, first_voice: int = 0) -> list[np.ndarray]:
    """Render (trajectory, pitch, harmonics, noise) jobs in batches.

    Args:
        render: the model (see :data:`Render`).
        jobs: each note's embedding trajectory, pitch, measured harmonics and noise bands (each
            None for every job, or for none).
        seconds: note length; hop: samples per frame; batch: notes per call.
        first_voice: noise voice id of the first job (ids run on), so a note's noise depends on
            its place in the job list only.
    """
    n = int(round(seconds * SAMPLE_RATE))
    frames = -(-n // hop)
    out: list[np.ndarray] = []
    for i in range(0, len(jobs), batch):
        chunk = jobs[i : i + batch]
        emb = np.stack([_frames(j[0], frames).T for j in chunk]).astype(np.float32)  # [B, C, F]
        pitch = np.array([j[1] for j in chunk], np.int64)
        voices = list(range(first_voice + i, first_voice + i + len(chunk)))
        extra = {}
        for key, col in (("harmonics", 2), ("noise", 3)):
            if chunk[0][col] is not None:
                extra[key] = np.stack([_frames(j[col], frames) for j in chunk]).astype(np.float32)  # [B, F, *]
        out.extend(render(emb, pitch, n, voices, **extra))
    return out


def _frames(trajectory: np.ndarray, frames: int) -> np.ndarray:
    """The first ``frames`` frames of a trajectory [F, C], its last frame held when shorter."""
    if trajectory.shape[0] >= frames:
        return trajectory[:frames]
    return np.concatenate([trajectory, np.repeat(trajectory[-1:], frames - trajectory.shape[0], 0)])


# ----------------------------------------------------------------------------- the evaluation


def evaluate_timbre(render: Render, hop: int, bank: Any, data: Path, pitches: Sequence[int], seconds: float = 2.0,
                    presets: Sequence[str] | None = None, pairs: int = 10, blend_pitches: Sequence[int] = BLEND_PITCHES,
                    batch: int = 16, log: Callable[[str], None] = lambda s: None,
                    harmonics: bool = False, noise: bool = True) -> dict[str, Any]:
    """The whole timbre evaluation of one model on one bank (see the module docstring).

    Args:
        render: the model (:data:`Render`), e.g. an engine backend's generate with fixed decoding.
        hop: the model's samples per embedding frame.
        bank: a :class:`nsynth_live.host.bank.Bank` whose presets name their source notes.
        data: the NSynth-layout dataset holding those source notes.
        pitches: MIDI pitches to judge (e.g. 36..84).
        seconds: rendered note length (features over 0.25 s .. end).
        presets: names to evaluate (default: all of the bank's).
        pairs: blend pairs (0: no blend test).
        blend_pitches: pitches each blend is rendered at.
        batch: notes per render call (the noise of each note depends on its place in the job
            list only, :func:`render_jobs`).
        log: progress lines.
        harmonics: play the presets' measured harmonics (``render`` gets them; every judged
            preset must carry them) rather than leave the source to the model, and their noise
            bands where every judged preset carries them and ``noise`` (a model that adds them:
            the residual form).

    Returns:
        JSON-ready dict: ceiling, identity (all / training / held-out instruments), per-preset
        rows, the confusion matrix, blends, and the in-tune share and timbre spread of the
        rendered notes.
    """
    chosen = list(bank.presets) if presets is None else [bank.get(n) for n in presets]
    if len(chosen) < 2:
        raise UserError("a timbre evaluation needs at least two presets")
    if harmonics:
        lacking = [p.name for p in chosen if p.harmonics is None]
        if lacking:
            raise UserError(f"bank {bank.path}: presets {', '.join(lacking[:5])} carry no measured harmonics "
                            "(re-encode the bank with a learned-source model)")
    names = [p.name for p in chosen]
    src = load_source_notes(data, chosen, pitches)
    keys = source_keys(src, names)
    log(f"features of {len(keys)} source notes")
    x_src = np.stack([note_features(src[k], k[1], end_s=seconds) for k in keys])
    y_src = [k[0] for k in keys]
    ceil, ceil_pred = ceiling(x_src, y_src, [k[1] for k in keys])
    clf = IdentityClassifier.fit(x_src, y_src)
    labels = clf.labels

    with_noise = harmonics and noise and all(p.noise is not None for p in chosen)
    jobs = [(bank.get(name).embedding, q, bank.get(name).harmonics if harmonics else None,
             bank.get(name).noise if with_noise else None) for name, q in keys]
    log(f"rendering {len(jobs)} notes of {seconds:g} s")
    audio = render_jobs(render, jobs, seconds, hop, batch)
    x_gen = np.stack([note_features(a, k[1], end_s=seconds) for a, k in zip(audio, keys)])
    prob = clf.proba(x_gen)
    pred = [labels[i] for i in np.argmax(prob, 1)]
    right = np.array([p == k[0] for p, k in zip(pred, keys)])
    held = {p.name for p in chosen if any(t in HELD_OUT_TAGS for t in p.tags)}
    is_held = np.array([k[0] in held for k in keys])

    cents = [note_f0(a, SAMPLE_RATE, start_s=FEATURE_START_S, end_s=seconds) for a in audio]
    in_tune = np.array([f is not None and abs(cents_off(f, k[1])) <= 50 for f, k in zip(cents, keys)])
    prof = {k: harmonic_profile(a, SAMPLE_RATE, k[1], start_s=FEATURE_START_S, end_s=seconds) for a, k in zip(audio, keys)}
    src_prof = {k: harmonic_profile(src[k], SAMPLE_RATE, k[1], start_s=FEATURE_START_S, end_s=seconds) for k in keys}

    confusion = np.zeros((len(labels), len(labels)), np.int64)
    for p, k in zip(pred, keys):
        confusion[labels.index(k[0]), labels.index(p)] += 1
    ceil_right = np.array([labels[c] == k[0] for c, k in zip(ceil_pred, keys)])
    rows = []
    for name in names:
        m = np.array([k[0] == name for k in keys])
        rows.append({"preset": name, "held_out": name in held, "notes": int(m.sum()),
                     "identity": float(right[m].mean()), "ceiling": float(ceil_right[m].mean()),
                     "in_tune": float(in_tune[m].mean())})

    result: dict[str, Any] = {
        "presets": names, "held_out_presets": sorted(held), "pitches": list(pitches), "seconds": seconds,
        "notes": len(keys), "ceiling": ceil,
        "ceiling_train": _share(ceil_right, ~is_held), "ceiling_held_out": _share(ceil_right, is_held),
        "identity": float(right.mean()), "identity_train": _share(right, ~is_held),
        "identity_held_out": _share(right, is_held), "chance": 1.0 / len(labels),
        "in_tune": float(in_tune.mean()),
        "timbre_spread_db": spread_over_pitches(prof, pitches),
        "source_spread_db": spread_over_pitches(src_prof, pitches),
        "timbre_error_db": float(np.mean([np.sqrt(np.mean((prof[k] - src_prof[k]) ** 2)) for k in keys])),
        "labels": labels, "confusion": confusion.tolist(), "per_preset": rows,
        "source": ("measured harmonics and noise" if with_noise else "measured harmonics") if harmonics else "model",
    }
    if pairs:
        result["blends"] = blend_curves(render, hop, bank, clf, blend_pairs(chosen, pairs), blend_pitches, seconds,
                                        batch, len(jobs), log, harmonics, with_noise)
        result["blends_monotonic"] = sum(b["monotonic"] for b in result["blends"])
    return result


def blend_curves(render: Render, hop: int, bank: Any, clf: IdentityClassifier, pairs: Sequence[tuple[str, str]],
                 pitches: Sequence[int], seconds: float, batch: int, first_voice: int,
                 log: Callable[[str], None] = lambda s: None, harmonics: bool = False,
                 with_noise: bool = False) -> list[dict[str, Any]]:
    """The blend test: P(b) / (P(a) + P(b)) along ``mix(a, b, t)`` for each pair.

    Args:
        render, hop, seconds, batch: as :func:`evaluate_timbre`.
        bank: holds the pairs' presets; clf: the identity classifier (it knows a and b).
        pairs: (a, b) preset names; pitches: each blend is rendered at these, and averaged.
        first_voice: noise id of the first blend note.
        harmonics: blend the pairs' measured harmonics as well, as the host does; with_noise:
            and their noise bands (every preset of the pairs carries them).

    Returns:
        per pair: {"a", "b", "t", "p_b" (one value per t), "monotonic", "strictly"}.
    """
    from nsynth_live.host.trajectory import mix

    jobs: list[Job] = []
    where = []
    for a, b in pairs:
        pa, pb = bank.get(a), bank.get(b)
        ea, eb = pa.embedding, pb.embedding
        frames = min(ea.shape[0], eb.shape[0])
        for t in BLEND_STEPS:
            h = mix(pa.harmonics[:frames], pb.harmonics[:frames], t) if harmonics else None
            z = mix(pa.noise[:frames], pb.noise[:frames], t) if with_noise else None
            for q in pitches:
                jobs.append((mix(ea[:frames], eb[:frames], t), q, h, z))
                where.append((a, b, t, q))
    log(f"rendering {len(jobs)} blend notes ({len(pairs)} pairs x {len(BLEND_STEPS)} steps x {len(pitches)} pitches)")
    audio = render_jobs(render, jobs, seconds, hop, batch, first_voice)
    prob = clf.proba(np.stack([note_features(x, w[3], end_s=seconds) for x, w in zip(audio, where)]))
    out = []
    for a, b in pairs:
        ia, ib = clf.labels.index(a), clf.labels.index(b)
        curve = []
        for t in BLEND_STEPS:
            m = [i for i, w in enumerate(where) if w[:3] == (a, b, t)]
            pa, pb = prob[m, ia], prob[m, ib]
            curve.append(float(np.mean(pb / np.maximum(pa + pb, 1e-12))))
        rising = all(y >= x - BLEND_SLACK for x, y in zip(curve, curve[1:])) and curve[-1] - curve[0] >= BLEND_RISE
        out.append({"a": a, "b": b, "t": list(BLEND_STEPS), "p_b": curve, "monotonic": bool(rising),
                    "strictly": bool(all(y > x for x, y in zip(curve, curve[1:])))})
    return out


def _share(right: np.ndarray, mask: np.ndarray) -> float | None:
    return float(right[mask].mean()) if mask.any() else None



# ----------------------------------------------------------------------------- report


def format_table(r: dict[str, Any]) -> str:
    """The evaluation as text: per-preset rows, then the summary lines."""
    def pct(x: float | None) -> str:
        return "  n/a" if x is None else f"{x:5.1%}"

    lines = [f"{'preset':<28} {'split':<9} {'identity':>8} {'ceiling':>8} {'in tune':>8}"]
    for row in r["per_preset"]:
        lines.append(f"{row['preset']:<28} {'held-out' if row['held_out'] else 'train':<9} "
                     f"{pct(row['identity']):>8} {pct(row['ceiling']):>8} {pct(row['in_tune']):>8}")
    lines += [
        f"notes: {r['notes']} ({len(r['presets'])} presets x pitches {r['pitches'][0]}-{r['pitches'][-1]}, {r['seconds']:g} s)",
        f"identity, all presets:        {pct(r['identity'])}  (ceiling {pct(r['ceiling'])}, chance {pct(r['chance'])})",
        f"identity, training instr.:    {pct(r['identity_train'])}  (ceiling {pct(r['ceiling_train'])})",
        f"identity, held-out instr.:    {pct(r['identity_held_out'])}  (ceiling {pct(r['ceiling_held_out'])})",
        f"in tune (within 50 cents):    {pct(r['in_tune'])}",
        f"timbre spread between presets: {_db(r['timbre_spread_db'])} (sources: {_db(r['source_spread_db'])}); "
        f"distance to the source note: {_db(r['timbre_error_db'])}",
    ]
    if "blends" in r:
        lines.append(f"blends rising monotonically: {r['blends_monotonic']} of {len(r['blends'])}")
        for b in r["blends"]:
            lines.append(f"  {b['a']:>24} -> {b['b']:<24} P(b)/(P(a)+P(b)): "
                         + " ".join(f"{p:4.2f}" for p in b["p_b"]) + ("  ok" if b["monotonic"] else ""))
    return "\n".join(lines)


def _db(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} dB"


def plot_confusion(r: dict[str, Any], title: str = "") -> bytes:
    """The confusion matrix (rows: the source instrument, columns: the classifier's verdict) as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = np.array(r["confusion"], np.float64)
    c = c / np.maximum(c.sum(1, keepdims=True), 1)
    n = c.shape[0]
    fig, ax = plt.subplots(figsize=(2 + 0.32 * n, 1.6 + 0.32 * n), dpi=100)
    ax.imshow(c, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), r["labels"], rotation=90, fontsize=7)
    ax.set_yticks(range(n), r["labels"], fontsize=7)
    ax.set_xlabel("classifier's verdict on the rendered note")
    ax.set_ylabel("preset (source instrument)")
    ax.set_title(title or f"identity {r['identity']:.0%} (ceiling {r['ceiling']:.0%})", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
