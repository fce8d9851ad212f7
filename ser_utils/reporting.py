"""Tables and figures of the book. Every number shown comes from the run's own files.

Notebook: notebooks/00_data.ipynb … 05_results.ipynb
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .systems import CLASSES, PAPER_FUSION_SYSTEMS, SYSTEM_NAMES, UNIMODAL_SYSTEMS

COLORS = {"angry": "#d62728", "happy": "#ff7f0e", "sad": "#1f77b4", "neutral": "#7f7f7f"}
CRITERION_NAMES = {"random": "RAND", "speaker": "SP", "speaker_script": "SP&SC",
                   "predefined": "predefined"}

__all__ = ["save_figure", "plot_durations", "plot_contours", "utterance_stats",
           "plot_class_distributions", "pooled", "plot_text_projection", "plot_fold_study",
           "median_iqr_table", "plot_auc_boxes", "relative_gain", "plot_confusion",
           "corpus_table", "data_findings", "plot_f0_tracks", "plot_voiced_normalisation",
           "features_findings",
           "paper_gains", "gains_table", "results_findings", "plot_confusion_grid",
           "plot_fusion_gain", "GAIN_COLUMNS", "plot_class_probabilities",
           "paper_table1", "beside_paper", "PAPER_CORPORA", "plot_epoch_curves", "ci_table",
           "ci_notes",
           "significance_table", "significance_summary",
           "SYSTEM_NAMES", "CRITERION_NAMES", "plot_seed_scores", "chosen_epochs",
           "fold_study_findings", "unimodal_findings", "fusion_findings", "provenance",
           "inference_findings",
           ]


def save_figure(fig, path_stem: str | Path) -> None:
    """Save ``fig`` as PNG and SVG (``results/.../<name>.png|svg``).

    Returns nothing, so that a notebook cell ending with this call shows the figure and no
    list of paths.
    """
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(path_stem.with_suffix(f".{ext}"), dpi=120, bbox_inches="tight")


# -- 00 data ----------------------------------------------------------------------------------
def plot_durations(corpora: dict[str, pd.DataFrame], *, bins: int = 40):
    """Histogram of utterance durations per corpus and class. Notebook: 00_data."""
    fig, axes = plt.subplots(1, len(corpora), figsize=(5.5 * len(corpora), 3.5), squeeze=False)
    for ax, (name, df) in zip(axes[0], corpora.items(), strict=False):
        hi = np.nanpercentile(df["duration"], 99) if df["duration"].notna().any() else 1.0
        edges = np.linspace(0, hi, bins + 1)
        for label in CLASSES:
            d = df.loc[df["label"] == label, "duration"].dropna()
            ax.hist(d, bins=edges, histtype="step", lw=1.5, color=COLORS[label],
                    label=f"{label} (n={len(d)})")
        ax.set(title=name, xlabel="duration (s)", ylabel="utterances")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def corpus_table(corpora: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per corpus: utterances, speakers, hours and the labels the loader dropped
    (``df.attrs["dropped_labels"]``, e.g. "fru 6, xxx 3").

    ``corpora``: ``{title: utterance table}`` (``speaker``, ``duration``).

    Notebook: notebooks/00_data.ipynb
    """
    return pd.DataFrame([{
        "utterances": len(df), "speakers": df["speaker"].nunique(),
        "hours": round(float(df["duration"].sum()) / 3600, 2),
        "other labels dropped": ", ".join(
            f"{k} {v}" for k, v in df.attrs.get("dropped_labels", {}).items()) or "none"}
        for df in corpora.values()], index=list(corpora))


def data_findings(corpora: dict[str, pd.DataFrame]) -> str:
    """Markdown, one line per corpus: utterances, speakers, hours and how unbalanced the four
    classes are, read as AvRec reads them (every class weighs the same, so chance is 25 %).

    ``corpora``: ``{title: utterance table}`` (``label``, ``speaker``, ``duration``).

    Notebook: notebooks/00_data.ipynb
    """
    lines = []
    for title, df in corpora.items():
        share = df["label"].value_counts(normalize=True).reindex(list(CLASSES), fill_value=0.0)
        big, small = share.idxmax(), share.idxmin()
        lines.append(
            f"* **{title}**: {len(df):,} utterances from {df['speaker'].nunique()} speakers "
            f"({df['duration'].sum() / 3600:.2f} h). The largest class, *{big}*, holds "
            f"{100 * share[big]:.0f} % of them, the smallest, *{small}*, {100 * share[small]:.0f} %"
            f": always answering *{big}* would be right {100 * share[big]:.0f} % of the time "
            f"but score an AvRec of {100 / len(CLASSES):.0f} %.")
    return "\n".join(lines) or "No corpus in this run."


# -- 01 features ------------------------------------------------------------------------------
def plot_contours(df: pd.DataFrame, audio: dict, *, columns=("F0", "loudness", "logHNR", "mfcc1"),
                  seed: int = 0):
    """Descriptor contours of one utterance per emotion (a random one, reproducibly).

    Notebook: 01_features."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(columns), len(CLASSES), figsize=(13, 1.9 * len(columns)),
                             sharex="col", squeeze=False)
    from .features.acoustic import LLD_COLUMNS
    idx = {c: LLD_COLUMNS.index(c) for c in columns}
    for j, label in enumerate(CLASSES):
        ids = [u for u in df.loc[df["label"] == label, "utt_id"] if u in audio]
        if not ids:
            continue
        utt = ids[rng.integers(len(ids))]
        x = audio[utt]
        t = np.arange(len(x)) / 100.0  # 10 ms hop
        text = df.loc[df["utt_id"] == utt, "text"].iloc[0]
        axes[0, j].set_title(f"{label}: {utt}\n“{text[:40]}”", fontsize=8)
        for i, c in enumerate(columns):
            axes[i, j].plot(t, x[:, idx[c]], color=COLORS[label], lw=1)
            if j == 0:
                axes[i, j].set_ylabel(c)
        axes[-1, j].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def utterance_stats(df: pd.DataFrame, audio: dict) -> pd.DataFrame:
    """Per utterance: mean F0 over voiced frames (Hz), mean loudness, voiced share, frames."""
    from .features.acoustic import LLD_COLUMNS
    f0, loud = LLD_COLUMNS.index("F0"), LLD_COLUMNS.index("loudness")
    rows = []
    for utt, label, speaker in df[["utt_id", "label", "speaker"]].itertuples(index=False):
        x = audio.get(utt)
        if x is None or len(x) == 0:
            continue
        voiced = x[:, f0] > 0
        rows.append({"utt_id": utt, "label": label, "speaker": speaker,
                     "F0_voiced_mean": float(x[voiced, f0].mean()) if voiced.any() else np.nan,
                     "loudness_mean": float(x[:, loud].mean()),
                     "voiced_share": float(voiced.mean()), "frames": len(x)})
    return pd.DataFrame(rows)


def plot_class_distributions(stats: pd.DataFrame, *, title: str = ""):
    """Box plots of voiced F0 and loudness per class. Notebook: 01_features."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
    for ax, col, unit in zip(axes, ("F0_voiced_mean", "loudness_mean"), ("Hz", "sone"),
                             strict=False):
        data = [stats.loc[stats["label"] == c, col].dropna() for c in CLASSES]
        bp = ax.boxplot(data, tick_labels=CLASSES, patch_artist=True, showfliers=False)
        for patch, c in zip(bp["boxes"], CLASSES, strict=False):
            patch.set_facecolor(COLORS[c])
            patch.set_alpha(0.5)
        ax.set(ylabel=f"{col} ({unit})", title=title)
    fig.tight_layout()
    return fig


def pooled(df: pd.DataFrame, seqs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean over tokens of each utterance's sequence: ``(X (n, dim), labels (n,))``."""
    keep = [(u, lab) for u, lab in zip(df["utt_id"], df["label"], strict=True)
            if u in seqs and len(seqs[u])]
    X = np.stack([seqs[u].mean(axis=0) for u, _ in keep])
    return X, np.array([lab for _, lab in keep])


def plot_text_projection(df: pd.DataFrame, encoders: dict[str, dict], *, title: str = ""):
    """2-D PCA projection of mean-pooled text embeddings, coloured by class, one panel per
    encoder (BERT vs GloVe). Notebook: 01_features."""
    from sklearn.decomposition import PCA

    fig, axes = plt.subplots(1, len(encoders), figsize=(5.5 * len(encoders), 4.2), squeeze=False)
    for ax, (name, seqs) in zip(axes[0], encoders.items(), strict=False):
        X, y = pooled(df, seqs)
        Z = PCA(n_components=2, random_state=0).fit_transform(X)
        for c in CLASSES:
            m = y == c
            ax.scatter(Z[m, 0], Z[m, 1], s=6, alpha=0.6, color=COLORS[c], label=c)
        ax.set(title=f"{title} {name} (dim {X.shape[1]})", xlabel="PC 1", ylabel="PC 2")
        ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    return fig


def plot_f0_tracks(tracks: dict[str, pd.DataFrame]):
    """F0 of one utterance per corpus by three trackers: this project's openSMILE configuration,
    stock eGeMAPS v02 and Praat (unvoiced frames not drawn).

    ``tracks``: ``{title: ser_utils.features.pitch_check.f0_tracks(...)}``.

    Notebook: notebooks/01_features.ipynb
    """
    from .features.pitch_check import TRACKERS

    style = {"praat": dict(color="0.6", lw=5, alpha=0.6),
             "project": dict(color="C0", lw=1.5, marker=".", ms=3),
             "egemaps": dict(color="C1", lw=1.5, ls="--")}
    fig, axes = plt.subplots(len(tracks), 1, figsize=(11, 2.6 * len(tracks)), squeeze=False)
    for ax, (title, t) in zip(axes[:, 0], tracks.items(), strict=False):
        for key in ("praat", "project", "egemaps"):
            ax.plot(t["time"], t[key].where(t[key] > 0), label=TRACKERS[key], **style[key])
        ax.set(title=title, ylabel="F0 (Hz)")
        ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def plot_voiced_normalisation(arrays, *, title: str = ""):
    """Why F0 is z-scored over voiced frames only: the F0 z-scores of the same frames with the
    mean and spread of all frames (unvoiced frames, F0 = 0, included) and of voiced frames only.

    ``arrays``: utterances' descriptors, each ``np.ndarray, shape (n_frames, 18)``.

    Notebook: notebooks/01_features.ipynb
    """
    from .features.acoustic import LLD_COLUMNS, Normaliser

    f0 = LLD_COLUMNS.index("F0")
    arrays = list(arrays)
    raw = np.concatenate([a[:, f0] for a in arrays])
    voiced = raw > 0
    naive = (raw - raw.mean()) / (raw.std() or 1.0)
    norm = Normaliser().fit(arrays)  # once: fitting per utterance made this quadratic
    ours = np.concatenate([norm.transform(a)[:, f0] for a in arrays])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
    panels = ((axes[0], naive, "mean and std of all frames"),
              (axes[1], ours, "mean and std of voiced frames (this project)"))
    for ax, z, name in panels:
        edges = np.linspace(min(z.min(), -4), max(z.max(), 4), 61)
        ax.hist(z[voiced], bins=edges, color="C0", alpha=0.8, label="voiced frames")
        ax.hist(z[~voiced], bins=edges, color="0.5", alpha=0.8, label="unvoiced frames")
        ax.set(title=name, xlabel="F0 z-score")
    axes[0].set_ylabel("frames")
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def features_findings(stats: dict[str, pd.DataFrame], checks: dict[str, pd.DataFrame]) -> str:
    """Markdown, one line per corpus: which classes have the highest and lowest median pitch and
    loudness, and how the project's F0 agrees with Praat beside stock eGeMAPS.

    ``stats``: ``{title: utterance_stats(...)}``; ``checks``: ``{title:
    ser_utils.features.pitch_check.cross_check(...)}`` (either may lack a corpus).

    Notebook: notebooks/01_features.ipynb
    """
    from .features.pitch_check import TRACKERS

    lines = []
    for title in dict.fromkeys([*stats, *checks]):
        parts = []
        if title in stats and len(stats[title]):
            med = stats[title].groupby("label")[["F0_voiced_mean", "loudness_mean"]].median()
            for col, what in (("F0_voiced_mean", "pitch"), ("loudness_mean", "loudness")):
                s = med[col].dropna()
                if len(s) > 1:
                    parts.append(f"median {what} is highest for *{s.idxmax()}* and lowest for "
                                 f"*{s.idxmin()}*")
        if title in checks:
            c = checks[title]
            ours, stock = c.loc[TRACKERS["project"]], c.loc[TRACKERS["egemaps"]]
            parts.append(
                f"against Praat on {int(ours['utterances'])} utterances, this project's F0 "
                f"agrees on voicing in {100 * ours['voicing agreement']:.0f} % of the frames "
                f"(stock eGeMAPS: {100 * stock['voicing agreement']:.0f} %) and is more than "
                f"20 % off in {100 * ours['gross pitch error']:.1f} % of the frames both call "
                f"voiced (eGeMAPS: {100 * stock['gross pitch error']:.1f} %)")
        if parts:
            lines.append(f"* **{title}**: " + "; ".join(parts) + ".")
    return "\n".join(lines) or "No features in this run."


# -- 02 / 05 results --------------------------------------------------------------------------
def plot_fold_study(scores: pd.DataFrame, *, metric: str = "auc"):
    """Fig. 2: AvAUC per fold criterion for the audio and BERT models, small and large.

    ``scores``: one row per (system, size, criterion, seed) with a ``metric`` column."""
    order = [c for c in ("random", "speaker", "speaker_script") if c in set(scores["criterion"])]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    variants = scores[["system", "size"]].drop_duplicates().sort_values(["system", "size"])
    width = 0.8 / max(len(variants), 1)
    for i, (system, size) in enumerate(variants.itertuples(index=False)):
        sub = scores[(scores["system"] == system) & (scores["size"] == size)]
        med = [sub.loc[sub["criterion"] == c, metric].median() for c in order]
        lo = [sub.loc[sub["criterion"] == c, metric].min() for c in order]
        hi = [sub.loc[sub["criterion"] == c, metric].max() for c in order]
        x = np.arange(len(order)) + (i - (len(variants) - 1) / 2) * width
        ax.bar(x, med, width, label=f"{SYSTEM_NAMES.get(system, system)} {size}",
               yerr=[np.subtract(med, lo), np.subtract(hi, med)], capsize=3, alpha=0.85)
    ax.set_xticks(np.arange(len(order)), [CRITERION_NAMES[c] for c in order])
    low = min(0.5, np.floor(20 * scores[metric].min()) / 20)  # below chance stays visible
    ax.set(ylabel="AvAUC (median over seeds)", ylim=(low, 1.0))
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def median_iqr_table(scores: pd.DataFrame, *, index="system", columns=("uar", "auc"),
                     by=("dataset",), systems=None) -> pd.DataFrame:
    """Table 1's layout of :func:`ser_utils.metrics.summarise`: median ± IQR over seeds as
    strings, AvRec in %, AvAUC to 3 decimals, one row per system and a column block per corpus."""
    from .metrics import summarise

    summ = summarise(scores, by=list(by) + [index], metrics=columns).set_index(list(by) + [index])
    out = pd.DataFrame(index=summ.index)
    for c in columns:
        scale, name, fmt = (100, "AvRec (%)", ".1f") if c == "uar" else (1, "AvAUC", ".3f")
        out[name] = [f"{scale * m:{fmt}} ± {scale * q:{fmt}}"
                     for m, q in zip(summ[f"{c}_median"], summ[f"{c}_iqr"], strict=False)]
    out["seeds"] = summ["n_seeds"]
    out = out.unstack(list(by)) if by else out
    if systems is not None:
        out = out.reindex([s for s in systems if s in out.index])
    out.index = [SYSTEM_NAMES.get(s, s) for s in out.index]
    return out


_METRIC_FORMATS = {"uar": ("AvRec (%)", 100, ".1f"), "auc": ("AvAUC", 1, ".3f")}


def _with_interval(est: float, low: float, high: float, metric: str, *, sign: str = "") -> str:
    _, scale, fmt = _METRIC_FORMATS[metric]
    est = f"{scale * est:{sign}{fmt}}"
    if np.isnan(low) or np.isnan(high):
        return f"{est} [no interval]"
    return f"{est} [{scale * low:{sign}{fmt}}, {scale * high:{sign}{fmt}}]"


def ci_table(ci: pd.DataFrame, *, systems=None, by=("dataset",)) -> pd.DataFrame:
    """Table 1 with bootstrap intervals: "median [low, high]" per system, metric and corpus.

    ``ci``: rows of :func:`ser_utils.metrics.bootstrap_ci` for one or both metrics (and several
    corpora); AvRec in %, AvAUC to 3 decimals, one row per system (in the order of ``systems``,
    absent ones dropped), a column block per metric and corpus.

    Notebook: notebooks/05_results.ipynb
    """
    by = [b for b in by if b in ci.columns]
    cells = ci.assign(
        name=[_METRIC_FORMATS[m][0] for m in ci["metric"]],
        cell=[_with_interval(e, lo, hi, m)
              for e, lo, hi, m in zip(ci["estimate"], ci["low"], ci["high"], ci["metric"],
                                      strict=True)])
    out = cells.pivot_table(index="system", columns=["name"] + by, values="cell",
                            aggfunc="first")
    out = out.reindex(columns=[c for c in ("AvRec (%)", "AvAUC") if c in out.columns.levels[0]],
                      level=0)
    if systems is not None:
        out = out.reindex([s for s in systems if s in out.index])
    out.index = [SYSTEM_NAMES.get(s, s) for s in out.index]
    out.columns.names = [None] * out.columns.nlevels
    return out


def ci_notes(ci: pd.DataFrame) -> str:
    """Markdown, one line per corpus and note of :func:`ser_utils.metrics.bootstrap_ci` (too few
    speakers, resamples skipped for lack of a class), naming the systems and metrics concerned.

    Notebook: notebooks/05_results.ipynb
    """
    ci = ci if "dataset" in ci.columns else ci.assign(dataset="")
    lines = []
    for (name, note), sub in ci[ci["note"] != ""].groupby(["dataset", "note"], sort=False):
        who = ("every system" if len(sub) == (ci["dataset"] == name).sum() else ", ".join(
            f"{SYSTEM_NAMES.get(s, s)} {_METRIC_FORMATS[m][0].replace(' (%)', '')}"
            for s, m in zip(sub["system"], sub["metric"], strict=False)))
        lines.append(f"* **{name}**: {note} ({who}).")
    return "\n".join(lines) or "Every corpus has enough speakers; every resample has every emotion."


def significance_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Fusion minus best single modality: difference [interval] and whether it is real.

    ``pairs``: output of :func:`ser_utils.metrics.compare_to_best_single` (one or more
    corpora). One row per corpus and fusion system; per metric the reference system, the
    difference (AvRec in percentage points, AvAUC to 3 decimals) and "yes" when the interval
    excludes 0 ("n/a": no interval).

    Notebook: notebooks/05_results.ipynb
    """
    by = [c for c in ("dataset",) if c in pairs.columns]
    rows = pairs.assign(
        metric_name=[_METRIC_FORMATS[m][0].replace(" (%)", " (pp)") for m in pairs["metric"]],
        vs=[SYSTEM_NAMES.get(r, r) for r in pairs["reference"]],
        difference=[_with_interval(e, lo, hi, m, sign="+") for e, lo, hi, m in
                    zip(pairs["estimate"], pairs["low"], pairs["high"], pairs["metric"],
                        strict=True)],
        real=np.where(pairs["low"].isna(), "n/a", np.where(pairs["significant"], "yes", "no")),
        system=[SYSTEM_NAMES.get(s, s) for s in pairs["system"]])
    out = rows.pivot_table(index=by + ["system"], columns="metric_name",
                           values=["vs", "difference", "real"], aggfunc="first")
    out = out.reindex(pd.MultiIndex.from_frame(rows[by + ["system"]].drop_duplicates()))
    out = out.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    order = {"vs": 0, "difference": 1, "real": 2}
    out = out[sorted(out.columns, key=lambda c: (-c[0].startswith("AvRec"), order[c[1]]))]
    out.columns.names = [None, None]
    return out


def significance_summary(pairs: pd.DataFrame) -> str:
    """Markdown, one line per corpus: for each metric, which fusion systems differ really from
    the best single modality (interval excludes 0), in which direction, and which do not.

    Notebook: notebooks/05_results.ipynb
    """
    def names(rows, with_diff):
        return ", ".join(
            f"{SYSTEM_NAMES.get(r.system, r.system)}"
            + (f" ({_with_interval(r.estimate, r.low, r.high, r.metric, sign='+')})"
               if with_diff else "") for r in rows.itertuples())

    lines = []
    groups = pairs.groupby("dataset", sort=False) if "dataset" in pairs.columns else []
    for name, sub in groups:
        parts = []
        for metric, m in sub.groupby("metric", sort=False):
            said = [f"{what} {names(rows, diff)}" for what, rows, diff in (
                ("real gains for", m[m["significant"] & (m["estimate"] > 0)], True),
                ("real losses for", m[m["significant"] & (m["estimate"] < 0)], True),
                ("no real difference for", m[~m["significant"] & m["low"].notna()], False),
                ("no interval for", m[m["low"].isna()], False)) if len(rows)]
            ref = m["reference"].iloc[0]
            parts.append(f"{_METRIC_FORMATS[metric][0].replace(' (%)', '')} against "
                         f"{SYSTEM_NAMES.get(ref, ref)}: " + "; ".join(said))
        notes = sorted(set(sub["note"]) - {""})
        lines.append(f"* **{name}** — " + ". ".join(parts) + "."
                     + (f" ({'; '.join(notes)}.)" if notes else ""))
    return "\n".join(lines) or "No fusion system and single modality to compare."


#: The two relative AvRec gains the paper states (Sec. 4.3).
GAIN_COLUMNS = ("BERT vs GloVe (%)", "best fusion vs best single modality (%)")


def paper_gains() -> pd.DataFrame:
    """The paper's relative AvRec gains (Sec. 4.3), computed from its Table 1
    (:func:`paper_table1`) as :func:`relative_gain` computes this run's.

    Returns
    -------
    pandas.DataFrame, shape (2, 2)
        Index the paper's corpora; columns ``BERT vs GloVe (%)`` (15.5 on IEMOCAP, 2.4 on
        MSP-PODCAST, as the paper states) and ``best fusion vs best single modality (%)``
        (best of EF-CS, EF-WS, EF-PT, LF-PT over the best of Audio, GloVe, BERT: about 16).

    Notebook: notebooks/05_results.ipynb
    """
    internal = {v: k for k, v in SYSTEM_NAMES.items()}
    table = paper_table1()
    out = {}
    for corpus, sub in table.groupby("dataset", sort=False):
        med = pd.Series(sub["avrec_median"].to_numpy(),
                        index=[internal[s] for s in sub["system"]])
        out[corpus] = {GAIN_COLUMNS[0]: relative_gain(med, ["bert"], ["glove"]),
                       GAIN_COLUMNS[1]: relative_gain(med, PAPER_FUSION_SYSTEMS,
                                                      UNIMODAL_SYSTEMS)}
    return pd.DataFrame(out).T


def gains_table(scores: pd.DataFrame, *, corpora: dict[str, tuple[str, str | None]]
                ) -> pd.DataFrame:
    """This run's relative AvRec gains beside the paper's (:func:`paper_gains`).

    ``scores``: :func:`ser_utils.metrics.score_predictions` rows with ``dataset``; ``corpora``:
    as :func:`beside_paper`. One row per corpus (its title); columns (gain, ``this run`` /
    ``paper``), in %, NaN where a system is missing or the corpus has no paper counterpart.

    Notebook: notebooks/05_results.ipynb
    """
    paper = paper_gains()
    rows = {}
    for name, (title, paper_name) in corpora.items():
        med = scores[scores["dataset"] == name].groupby("system")["uar"].median()
        if med.empty:
            continue
        ours = {GAIN_COLUMNS[0]: relative_gain(med, ["bert"], ["glove"]),
                GAIN_COLUMNS[1]: relative_gain(med, PAPER_FUSION_SYSTEMS, UNIMODAL_SYSTEMS)}
        rows[title] = {(g, src): (ours[g] if src == "this run" else
                                  paper.at[paper_name, g] if paper_name in paper.index
                                  else np.nan)
                       for g in GAIN_COLUMNS for src in ("this run", "paper")}
    out = pd.DataFrame(rows).T
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out.astype(float).round(1)


def results_findings(scores: pd.DataFrame, pairs: pd.DataFrame | None = None, *,
                     corpora: dict[str, tuple[str, str | None]]) -> str:
    """Markdown, one line per corpus, in the paper's terms: BERT over GloVe and the best fusion
    system over the best single modality (relative gains of the median AvRec over seeds, beside
    the paper's from :func:`paper_gains`), and whether the speaker-bootstrap interval of that
    fusion system's AvRec difference (``pairs``, :func:`ser_utils.metrics.compare_to_best_single`)
    excludes 0.

    ``corpora``: as :func:`beside_paper`.

    Notebook: notebooks/05_results.ipynb
    """
    paper = paper_gains()

    def versus(paper_name, column):
        if paper_name not in paper.index:
            return ""
        return f" (paper, {paper_name}: {paper.at[paper_name, column]:+.1f} %)"

    lines = []
    for name, (title, paper_name) in corpora.items():
        med = scores[scores["dataset"] == name].groupby("system")["uar"].median()
        parts = []
        if {"bert", "glove"} <= set(med.index):
            parts.append(f"BERT over GloVe {relative_gain(med, ['bert'], ['glove']):+.1f} % "
                         f"relative AvRec" + versus(paper_name, GAIN_COLUMNS[0]))
        fus = med.reindex(PAPER_FUSION_SYSTEMS).dropna()
        uni = med.reindex(UNIMODAL_SYSTEMS).dropna()
        if len(fus) and len(uni):
            best, single = fus.idxmax(), uni.idxmax()
            ref = pairs[(pairs.get("dataset", name) == name) & (pairs["metric"] == "uar")] \
                if pairs is not None and len(pairs) else ()
            if len(ref) and ref["reference"].iloc[0] in uni.index:
                single = ref["reference"].iloc[0]  # the same one among ties as the intervals
            text = (f"the best fusion system, {SYSTEM_NAMES[best]} ({100 * fus[best]:.1f} %), "
                    f"over the best single modality, {SYSTEM_NAMES[single]} "
                    f"({100 * uni[single]:.1f} %): {relative_gain(med, [best], [single]):+.1f} %"
                    + versus(paper_name, GAIN_COLUMNS[1]))
            if pairs is not None and len(pairs):
                row = pairs[(pairs.get("dataset", name) == name) & (pairs["system"] == best)
                            & (pairs["metric"] == "uar") & (pairs["reference"] == single)]
                if len(row) and not np.isnan(row["low"].iloc[0]):
                    r = row.iloc[0]
                    verdict = ("excludes 0: a real difference" if r["significant"]
                               else "includes 0: not a real difference")
                    interval = _with_interval(r.estimate, r.low, r.high, "uar", sign="+")
                    text += f"; its 95 % interval, {interval} pp, {verdict}"
            parts.append(text)
        if parts:
            n_seeds = scores.loc[scores["dataset"] == name, "seed"].nunique()
            lines.append(f"* **{title}** ({n_seeds} seed{'s' * (n_seeds != 1)}): "
                         + "; ".join(parts) + ".")
    return "\n".join(lines) or "No scores in this run."


def plot_confusion_grid(preds: pd.DataFrame, *, systems, title: str = "", ncols: int = 4):
    """Row-normalised confusion matrices of every system of one corpus (rows: true class;
    the predictions of all seeds and folds pooled), one small panel per system.

    Notebook: notebooks/05_results.ipynb
    """
    from .metrics import confusion

    present = [s for s in systems if s in set(preds["system"])]
    ncols = max(1, min(ncols, len(present)))
    nrows = -(-len(present) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.3 * nrows), squeeze=False)
    for ax in axes.flat[len(present):]:
        ax.set_axis_off()
    for k, (ax, system) in enumerate(zip(axes.flat, present, strict=False)):
        cm = confusion(preds[preds["system"] == system])
        ax.imshow(cm.to_numpy(), vmin=0, vmax=1, cmap="Blues")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                v = cm.iat[i, j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.5 else "black")
        ax.set_xticks(range(len(cm.columns)), cm.columns if k // ncols == nrows - 1 else [],
                      rotation=30, fontsize=8)
        ax.set_yticks(range(len(cm.index)), cm.index if k % ncols == 0 else [], fontsize=8)
        ax.set_title(SYSTEM_NAMES.get(system, system).split(" (")[0], fontsize=9)
    if title:
        fig.suptitle(f"{title} (rows: true class, columns: predicted)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_fusion_gain(pairs: pd.DataFrame):
    """Each fusion system minus the best single modality, with its 95 % speaker-bootstrap
    interval: one panel per metric (AvRec in percentage points, AvAUC), one colour per corpus.

    ``pairs``: :func:`ser_utils.metrics.compare_to_best_single` rows (with ``dataset``).

    Notebook: notebooks/05_results.ipynb
    """
    pairs = pairs if "dataset" in pairs.columns else pairs.assign(dataset="")
    metrics_ = [m for m in ("uar", "auc") if m in set(pairs["metric"])]
    systems = list(dict.fromkeys(pairs["system"]))
    names = list(dict.fromkeys(pairs["dataset"]))
    fig, axes = plt.subplots(1, len(metrics_), figsize=(5.5 * len(metrics_),
                                                        0.9 + 0.45 * len(systems) * len(names)),
                             squeeze=False)
    for ax, metric in zip(axes[0], metrics_, strict=False):
        label, scale, _ = _METRIC_FORMATS[metric]
        for k, name in enumerate(names):
            sub = pairs[(pairs["metric"] == metric) & (pairs["dataset"] == name)]
            sub = sub.set_index("system").reindex(systems).dropna(subset=["estimate"])
            y = np.array([systems.index(s) for s in sub.index]) + 0.8 * (
                k - (len(names) - 1) / 2) / max(len(names), 1)
            est = scale * sub["estimate"].to_numpy(float)
            lo = scale * sub["low"].to_numpy(float)
            hi = scale * sub["high"].to_numpy(float)
            ref = ", ".join(SYSTEM_NAMES.get(r, r) for r in dict.fromkeys(sub["reference"]))
            ax.errorbar(est, y, xerr=[np.nan_to_num(est - lo), np.nan_to_num(hi - est)],
                        fmt="o", capsize=3, color=f"C{k}", label=f"{name} (vs {ref})")
        ax.axvline(0, color="0.4", lw=1, ls="--")
        ax.set_yticks(range(len(systems)),
                      [SYSTEM_NAMES.get(s, s).split(" (")[0] for s in systems])
        ax.invert_yaxis()
        short = label.replace(" (%)", "")
        ax.set(xlabel=f"{short} difference" + (" (pp)" if metric == "uar" else ""),
               title=f"{short}: fusion − best single modality")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_auc_boxes(scores: pd.DataFrame, *, systems, metric: str = "auc"):
    """Fig. 3: box plots over seeds of AvAUC per system, every seed drawn as a point; one panel
    per corpus. Notebook: notebooks/05_results.ipynb"""
    names = list(dict.fromkeys(scores["dataset"]))
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        sub = scores[scores["dataset"] == name]
        present = [s for s in systems if s in set(sub["system"])]
        data = [sub.loc[sub["system"] == s, metric].to_numpy() for s in present]
        ax.boxplot(data, tick_labels=[SYSTEM_NAMES.get(s, s).split(" (")[0] for s in present],
                   showfliers=False, medianprops={"color": "k"})
        rng = np.random.default_rng(0)  # horizontal jitter of the seed points only
        for k, values in enumerate(data, start=1):
            ax.scatter(k + rng.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.7,
                       zorder=3)
        ax.set(title=name, ylabel="AvAUC over seeds")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def relative_gain(summary: pd.Series, better, worse) -> float:
    """Relative gain (%) of the best of ``better`` over the best of ``worse`` (median UAR)."""
    b = summary.reindex(list(better)).max()
    w = summary.reindex(list(worse)).max()
    return float(100 * (b - w) / w)


#: Columns of ``ser_utils/reference/paper_table1.csv`` (see the README beside it).
PAPER_TABLE1_COLUMNS = ("dataset", "system", "avrec_median", "avrec_iqr", "avauc_median",
                        "avauc_iqr")
#: The paper's corpus for each loader kind (``config.Dataset.kind``); other kinds have none.
PAPER_CORPORA = {"iemocap": "IEMOCAP", "msp_podcast": "MSP-PODCAST"}


def paper_table1() -> pd.DataFrame:
    """The paper's published Table 1 (median and IQR over 10 seeds), as printed.

    Returns
    -------
    pandas.DataFrame, shape (14, 6)
        Columns :data:`PAPER_TABLE1_COLUMNS`, one row per (dataset, system): ``dataset``
        ``IEMOCAP`` / ``MSP-PODCAST``, ``system`` the paper's name (``Audio`` ... ``LF-PT``),
        AvRec in percent, AvAUC as a fraction. Read from
        ``ser_utils/reference/paper_table1.csv`` (see the README beside it).

    Notebook: notebooks/05_results.ipynb
    """
    path = Path(__file__).parent / "reference" / "paper_table1.csv"
    table = pd.read_csv(path)
    if tuple(table.columns) != PAPER_TABLE1_COLUMNS:
        raise ValueError(f"{path.name} has columns {list(table.columns)}, expected "
                         f"{list(PAPER_TABLE1_COLUMNS)}")
    return table


def beside_paper(scores: pd.DataFrame, *, corpora: dict[str, tuple[str, str | None]],
                 systems=None) -> pd.DataFrame:
    """This run's Table 1 beside the paper's, in the paper's layout.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`ser_utils.metrics.score_predictions` with a ``dataset`` column.
    corpora : dict, keyword-only
        ``{dataset name in scores: (title shown, paper corpus or None)}``, e.g.
        ``{"iemocap_demo": ("IEMOCAP (synthetic demo)", "IEMOCAP")}``; the paper corpus is a
        ``dataset`` value of :func:`paper_table1` (None: no paper column).
    systems : sequence of str, optional
        Row order (internal names, e.g. ``config.TABLE1_SYSTEMS``); absent systems dropped.

    Returns
    -------
    pandas.DataFrame
        One row per system (the paper's names); columns (title, metric, source) with metric
        ``AvRec (%)`` / ``AvAUC`` and source ``this run`` / ``paper``; cells "median ± IQR"
        formatted as the paper prints them, "—" where the paper has no such system.

    Notebook: notebooks/05_results.ipynb
    """
    from .metrics import summarise

    paper = paper_table1().set_index(["dataset", "system"])
    present = list(dict.fromkeys(scores["system"]))
    order = [s for s in (systems if systems is not None else present) if s in present]
    columns = {}
    for name, (title, paper_name) in corpora.items():
        sub = scores[scores["dataset"] == name]
        if sub.empty:
            continue
        summ = summarise(sub, by=["system"], metrics=("uar", "auc")).set_index("system")
        for metric, (label, scale, fmt) in _METRIC_FORMATS.items():
            columns[(title, label, "this run")] = [
                f"{scale * summ.at[s, f'{metric}_median']:{fmt}} ± "
                f"{scale * summ.at[s, f'{metric}_iqr']:{fmt}}" if s in summ.index else "—"
                for s in order]
            if paper_name is None:
                continue
            col = "avrec" if metric == "uar" else "avauc"
            cells = []
            for s in order:
                key = (paper_name, SYSTEM_NAMES.get(s, s))
                cells.append(f"{paper.at[key, col + '_median']:{fmt}} ± "
                             f"{paper.at[key, col + '_iqr']:{fmt}}" if key in paper.index
                             else "—")
            columns[(title, label, "paper")] = cells
    out = pd.DataFrame(columns, index=[SYSTEM_NAMES.get(s, s) for s in order])
    out.columns = pd.MultiIndex.from_tuples(list(columns), names=[None, None, None])
    return out


def plot_epoch_curves(stage_dir: str | Path):
    """Validation AvAUC per epoch (median over seeds) for each system of a stage, with the
    chosen epoch marked; ``None`` when the profile did not select epochs."""
    path = Path(stage_dir) / "epoch_curves.parquet"
    if not path.exists():
        return None
    curves = pd.read_parquet(path)
    per_seed = curves.groupby(["system", "seed", "epoch"])["val_auc"].mean()
    med = per_seed.groupby(["system", "epoch"]).median().unstack("system")
    chosen_path = Path(stage_dir) / "epochs.json"  # the epochs training used, as chosen
    chosen = pd.read_json(chosen_path, typ="series") if chosen_path.exists() else pd.Series()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for system in med.columns:
        best = int(chosen.get(system, med[system].idxmax()))
        line, = ax.plot(med.index, med[system],
                        label=f"{SYSTEM_NAMES.get(system, system)} (epoch {best})")
        ax.plot([best], [med[system].get(best, np.nan)], "o", color=line.get_color())
    ax.set(xlabel="epoch", ylabel="validation AvAUC")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_class_probabilities(proba: pd.DataFrame, *, title: str = ""):
    """Class probabilities as stacked horizontal bars, one bar per row of ``proba`` (its index
    labels the bars; columns ``p_<class>`` or the class names, in :data:`CLASSES` order).

    Notebook: notebooks/06_inference.ipynb
    """
    cols = [c for c in proba.columns if c.removeprefix("p_") in CLASSES]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.45 * len(proba)))
    left = np.zeros(len(proba))
    y = np.arange(len(proba))
    for c in cols:
        name = c.removeprefix("p_")
        values = proba[c].to_numpy(float)
        ax.barh(y, values, left=left, color=COLORS[name], label=name, height=0.6)
        for yi, (lo, v) in enumerate(zip(left, values, strict=False)):
            if v >= 0.08:
                ax.text(lo + v / 2, yi, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white")
        left += values
    ax.set_yticks(y, [str(i) for i in proba.index], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="probability", title=title)
    ax.legend(fontsize=8, ncol=len(cols), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False)
    fig.tight_layout()
    return fig


def plot_confusion(cm: pd.DataFrame, *, title: str = ""):
    """Row-normalised confusion matrix (rows: true class)."""
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    im = ax.imshow(cm.to_numpy(), vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(cm.columns)), cm.columns, rotation=30)
    ax.set_yticks(range(len(cm.index)), cm.index)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            v = cm.iat[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center",
                    color="white" if v > 0.5 else "black", fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


# -- 03 / 04: seeds, epochs, what the run shows; provenance ------------------------------------
def _paper_gain(kind: str, column: str, *, mean_otherwise: bool = False) -> float | None:
    """The paper's relative AvRec gain ``column`` (:data:`GAIN_COLUMNS`) on the corpus of loader
    kind ``kind``, computed from its Table 1 (:func:`paper_gains`); for other corpora None, or
    with ``mean_otherwise`` the mean over the paper's two corpora."""
    gains = paper_gains()[column]
    corpus = PAPER_CORPORA.get(kind)
    if corpus is None:
        return float(gains.mean()) if mean_otherwise else None
    return float(gains.loc[corpus])


def plot_seed_scores(scores: pd.DataFrame, *, systems, metrics=("uar", "auc"), datasets=None):
    """Fig. 3 style: per system a box over seeds with every seed drawn as a point; one panel
    per corpus and metric (AvRec in %, AvAUC).

    ``scores``: one row per (dataset, system, seed) with the ``metrics`` columns;
    ``datasets``: the run's :class:`ser_utils.config.Dataset` objects, for the corpus titles.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    names = list(dict.fromkeys(scores["dataset"]))
    wide = len(set(systems) & set(scores["system"])) > 5  # many systems: one panel a row
    width = max(4.0, 0.75 * len(set(systems) & set(scores["system"])) + 1.5)
    shape = (len(metrics) * len(names), 1) if wide else (len(metrics), len(names))
    fig, axes = plt.subplots(*shape, squeeze=False,
                             figsize=(width * shape[1], 2.6 * shape[0]))
    rng = np.random.default_rng(0)  # horizontal jitter of the points only
    for j, name in enumerate(names):
        sub = scores[scores["dataset"] == name]
        present = [s for s in systems if s in set(sub["system"])]
        for i, metric in enumerate(metrics):
            label, scale, _ = _METRIC_FORMATS[metric]
            ax = axes[j * len(metrics) + i, 0] if wide else axes[i, j]
            data = [scale * sub.loc[sub["system"] == s, metric].to_numpy() for s in present]
            ax.boxplot(data, widths=0.5, showfliers=False, medianprops={"color": "k"})
            for k, values in enumerate(data, start=1):
                ax.scatter(k + rng.uniform(-0.12, 0.12, len(values)), values, s=14,
                           alpha=0.7, zorder=3)
            ax.set_xticks(range(1, len(present) + 1),
                          [SYSTEM_NAMES.get(s, s).split(" (")[0] for s in present],
                          fontsize=8)
            ax.set_ylabel(label)
            if i == 0:
                n = sub["seed"].nunique()
                ax.set_title(f"{_title(name, datasets)} ({n} seed{'s' * (n != 1)})",
                             fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def chosen_epochs(stage_dirs: dict) -> pd.DataFrame:
    """Training epochs per system (rows) and corpus (columns), from each stage's
    ``epochs.json`` (chosen on validation data, or the profile's fixed number).

    ``stage_dirs``: ``{dataset name: results/<profile>/<dataset>/<stage>}``.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    import json

    cols = {name: pd.Series(json.loads((Path(d) / "epochs.json").read_text()), dtype="Int64")
            for name, d in stage_dirs.items() if (Path(d) / "epochs.json").exists()}
    out = pd.DataFrame(cols)
    out.index = [SYSTEM_NAMES.get(s, s) for s in out.index]
    return out


def _median(scores: pd.DataFrame, metric: str = "uar") -> pd.Series:
    return scores.groupby("system")[metric].median()


def _title(name: str, datasets) -> str:
    return {d.name: d.title for d in datasets or ()}.get(name, name)


def _kind(name: str, datasets) -> str:
    kinds = {d.name: d.kind for d in datasets or ()}
    return kinds.get(name, "iemocap" if name.startswith("iemocap") else
                     "msp_podcast" if name.startswith("msp") else name)


def fold_study_findings(scores: pd.DataFrame, *, metric: str = "auc", datasets=None) -> str:
    """Markdown: does SP&SC fall below RAND for the text model (Fig. 2), and for audio?

    ``scores``: the fold study's runs (``dataset``, ``system``, ``size``, ``criterion``,
    ``seed``, ``metric``); medians over seeds and both sizes. One line per corpus and system.

    Notebook: notebooks/02_folds.ipynb
    """
    label = _METRIC_FORMATS[metric][0]
    lines = []
    for name, sub in scores.groupby("dataset", sort=False):
        med = sub.groupby(["system", "criterion"])[metric].median().unstack("criterion")
        for system in [s for s in ("bert", "glove", "audio") if s in med.index]:
            row = med.loc[system]
            if not {"random", "speaker_script"} <= set(row.dropna().index):
                continue
            cells = ", ".join(f"{CRITERION_NAMES[c]} {row[c]:.3f}"
                              for c in ("random", "speaker", "speaker_script") if c in row)
            drop = row["random"] - row["speaker_script"]
            verdict = (f"SP&SC falls **below** RAND by {drop:.3f}" if drop > 0 else
                       f"SP&SC does **not** fall below RAND ({-drop:+.3f})")
            lines.append(f"* **{_title(name, datasets)}**, {SYSTEM_NAMES.get(system, system)}: "
                         f"{label} {cells}; "
                         f"{verdict}.")
    if not lines:
        return "No corpus of this run has the three fold criteria (no fold study)."
    return ("Median over seeds and both model sizes:\n\n" + "\n".join(lines) + "\n\nThe paper "
            "(Fig. 2) finds the text model much better under RAND and SP than under SP&SC, and "
            "the audio model much less affected.")


def unimodal_findings(scores: pd.DataFrame, *, datasets=None) -> str:
    """Markdown: BERT vs GloVe as the paper states it (relative AvRec gain of the medians over
    seeds; paper: +15.5 % IEMOCAP, +2.4 % MSP-PODCAST), and the best single modality.

    ``datasets``: the run's :class:`ser_utils.config.Dataset` objects (their ``kind`` picks the
    paper's number); without them the kind is guessed from the corpus name.

    Notebook: notebooks/03_unimodal.ipynb
    """
    lines = []
    for name, sub in scores.groupby("dataset", sort=False):
        med = _median(sub)
        parts = []
        if {"bert", "glove"} <= set(med.index):
            gain = relative_gain(med, ["bert"], ["glove"])
            paper = _paper_gain(_kind(name, datasets), GAIN_COLUMNS[0])
            parts.append(f"BERT {100 * med['bert']:.1f} % vs GloVe {100 * med['glove']:.1f} % "
                         f"AvRec: {gain:+.1f} % relative"
                         + (f" (paper: {paper:+.1f} %)" if paper is not None else ""))
        best = med.idxmax()
        parts.append(f"best single modality {SYSTEM_NAMES.get(best, best)} "
                     f"({100 * med[best]:.1f} %)")
        n = sub["seed"].nunique()
        lines.append(f"* **{_title(name, datasets)}** ({n} seed{'s' * (n != 1)}): "
                     + "; ".join(parts) + ".")
    return "\n".join(lines) or "No unimodal scores."


def fusion_findings(unimodal: pd.DataFrame, fusion: pd.DataFrame, *, datasets=None,
                    systems=None) -> str:
    """Markdown: best fusion system vs best single modality (relative AvRec gain of the medians
    over seeds; paper: about +16 %), and, where both ran, XF-CS minus EF-CS paired by seed.

    ``systems``: the fusion systems eligible as "best fusion" (default: the paper's four).

    Notebook: notebooks/04_fusion.ipynb
    """
    systems = list(systems or PAPER_FUSION_SYSTEMS)
    lines = []
    for name, fus in fusion.groupby("dataset", sort=False):
        uni = _median(unimodal[unimodal["dataset"] == name])
        med = _median(fus).reindex(systems).dropna()
        if uni.empty or med.empty:
            continue
        single, best = uni.idxmax(), med.idxmax()
        gain = relative_gain(pd.concat([uni, med]), [best], [single])
        line = (f"* **{_title(name, datasets)}**: best fusion {SYSTEM_NAMES.get(best, best)} "
                f"{100 * med[best]:.1f} % vs best single modality "
                f"{SYSTEM_NAMES.get(single, single)} {100 * uni[single]:.1f} % AvRec: "
                f"{gain:+.1f} % relative (paper: about "
                f"{_paper_gain(_kind(name, datasets), GAIN_COLUMNS[1], mean_otherwise=True):+.0f}"
                " %)")
        per_seed = fus.pivot_table(index="seed", columns="system", values="uar")
        if {"ef_cs", "xf_cs"} <= set(per_seed.columns):
            diff = 100 * (per_seed["xf_cs"] - per_seed["ef_cs"]).dropna()
            line += (f"; XF-CS − EF-CS, paired by seed: median {diff.median():+.1f} pp AvRec "
                     f"(positive for {(diff > 0).sum()} of {len(diff)} seeds)")
        lines.append(line + ".")
    return "\n".join(lines) or "No fusion and unimodal scores of the same corpus."


def provenance(settings) -> pd.DataFrame:
    """What produced a run's numbers, for the book's provenance page: profile, corpora, encoders
    (as notebook 01 recorded them), precision (asked / effective), epoch protocol, seeds, and the
    versions of the packages that did the work. No machine paths.

    Returns
    -------
    pandas.DataFrame, one row per item, columns ``item`` and ``value``

    Notebook: written by ser_utils.pipeline into the book's "Provenance" page.
    """
    import json
    import platform
    from importlib import metadata

    prof = settings.profile
    try:  # the effective arithmetic, where this project decides it
        from .precision import resolve as effective
        precision = f"{effective(settings.precision)} (asked: {settings.precision})"
    except ImportError:
        precision = f"{settings.precision} (as asked)"
    protocol = {"inner": "inner: chosen on a validation split of the training speakers",
                "paper": "paper: chosen on the test folds (optimistic)"}
    rows = [("profile", f"{prof.name}: seeds {', '.join(map(str, prof.seeds))}"),
            ("corpora", "; ".join(d.title for d in settings.datasets)),
            ("precision", precision),
            ("epoch protocol", protocol.get(prof.epoch_protocol, prof.epoch_protocol)
             if prof.select_epochs else
             f"fixed: {prof.epochs} epoch{'s' * (prof.epochs != 1)} (no selection)")]
    encoders = {}  # encoder -> {description: [corpora]}, as notebook 01 recorded them
    for d in settings.datasets:
        path = settings.results_dir / d.name / "features" / "features.json"
        if path.exists():
            for e, info in json.loads(path.read_text()).get("encoders", {}).items():
                encoders.setdefault(e, {}).setdefault(
                    f"{info['name']}, {info['dim']}-d", []).append(d.name)
    for e, used in encoders.items():
        rows += [(f"{e} encoder" + (f" ({', '.join(names)})" if len(used) > 1 else ""), desc)
                 for desc, names in used.items()]
    rows.append(("python", platform.python_version()))
    for pkg in ("tensorflow-cpu", "tensorflow", "keras", "torch", "transformers", "opensmile",
                "numpy", "pandas", "scikit-learn", "papermill", "jupyter-book"):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            continue
    return pd.DataFrame(rows, columns=["item", "value"])


def inference_findings(check: pd.Series, table: pd.DataFrame) -> str:
    """Markdown: whether the exported model reproduces the stage's probabilities
    (:func:`ser_utils.experiment.check_against_stage`), and how many of the held-out
    utterances shown it classifies as annotated (``table``: ``label`` and ``predicted`` columns).

    Notebook: notebooks/06_inference.ipynb
    """
    parts = []
    if check is None or check.empty or not check.get("utterances", 0):
        parts.append("The fusion stage saved no predictions for this job, so the export could "
                     "not be compared with it.")
    else:
        parts.append(
            f"The exported model reproduces the fusion stage's probabilities on "
            f"{int(check['utterances'])} test utterances: the largest difference of a "
            f"probability is {float(check['max_abs_diff']):.1e}, and "
            f"{100 * float(check['same_class']):.0f} % of them get the same predicted class.")
    if len(table):
        hits = int((table["label"] == table["predicted"]).sum())
        parts.append(f"On the {len(table)} held-out utterances shown it predicts the annotated "
                     f"class for {hits}; one model from one seed, which says little on its own "
                     "(Table 1 is the median over seeds).")
    return " ".join(parts)
