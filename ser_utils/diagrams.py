"""Method diagrams of the book, drawn from the run's own objects: the fold tables of notebook 02
(which session x script cells each criterion puts in train and test), the Keras models of
notebook 03 (Fig. 1, layer by layer) and the fusion models of notebook 04 (which layers train
in each start mode, from their ``trainable`` flags).

Nothing here is drawn by hand: change ``models.py`` or ``folds.py`` and the figures follow.

Notebook: notebooks/02_folds.ipynb, notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.patches import FancyBboxPatch, Patch

__all__ = ["ROLES", "fold_roles", "plot_fold_grid", "layer_blocks", "plot_model_blocks",
           "build_systems", "trainable_table", "plot_trainable"]

# -- 02 folds: the session x script diagram -----------------------------------------------------
ROLES = ("train", "test", "unused")
_ROLE_COLORS = {"train": "#9ecae1", "test": "#fd8d3c", "unused": "#f0f0f0", "mixed": "#c7b3d9"}


def fold_roles(df: pd.DataFrame, table: pd.DataFrame, *, fold: int = 0, rows: str = "session",
               columns: str = "script") -> pd.DataFrame:
    """Utterances per role in one fold, for every (``rows``, ``columns``) cell of the corpus.

    Parameters
    ----------
    df : pandas.DataFrame
        Utterance table (``utt_id`` and the ``rows`` / ``columns`` metadata).
    table : pandas.DataFrame
        A fold table as written by notebook 02 (``utt_id``, ``fold``, ``role``).
    fold : int, keyword-only
    rows, columns : str, keyword-only
        Metadata columns of the grid; an empty ``columns`` value reads "improvised" (IEMOCAP's
        utterances outside the scripted dialogs).

    Returns
    -------
    pandas.DataFrame, shape (n_cells, 4)
        Indexed by (rows, columns); counts per role in ``ROLES`` and ``role``: the only role of
        the cell's utterances, or ``"mixed"`` when they are split between roles.

    Notebook: notebooks/02_folds.ipynb
    """
    t = table.loc[table["fold"] == fold, ["utt_id", "role"]].merge(
        df[["utt_id", rows, columns]], on="utt_id", how="inner")
    t[columns] = t[columns].replace("", "improvised")
    counts = pd.crosstab([t[rows], t[columns]], t["role"]).reindex(columns=list(ROLES),
                                                                   fill_value=0)
    counts.columns.name = None
    present = counts.gt(0)
    counts["role"] = np.where(present.sum(axis=1) == 1, present.idxmax(axis=1), "mixed")
    return counts


def plot_fold_grid(df: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, fold: int = 0,
                   names: Mapping[str, str] | None = None, rows: str = "session",
                   columns: str = "script"):
    """One panel per fold criterion: the ``rows`` x ``columns`` grid of the corpus (IEMOCAP:
    session x script), each cell coloured by the role its utterances play in ``fold``; a mixed
    cell shows its share of test utterances.

    Parameters
    ----------
    tables : mapping criterion -> fold table (see :func:`fold_roles`)
    names : mapping criterion -> panel title (e.g. ``reporting.CRITERION_NAMES``)

    Notebook: notebooks/02_folds.ipynb
    """
    names = names or {}
    fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 3.3), squeeze=False,
                             sharey=True)
    for ax, (criterion, table) in zip(axes[0], tables.items(), strict=False):
        roles = fold_roles(df, table, fold=fold, rows=rows, columns=columns)
        grid = roles["role"].unstack(columns)
        grid = grid.reindex(columns=sorted(grid.columns, key=lambda c: (c != "improvised", c)))
        share = (roles["test"] / roles[list(ROLES)].sum(axis=1)).unstack(columns)[grid.columns]
        colors = np.array([[_ROLE_COLORS.get(r, "white") if isinstance(r, str) else "white"
                            for r in row] for row in grid.to_numpy()], dtype=object)
        rgb = np.array([[to_rgb(c) for c in row] for row in colors])
        ax.imshow(rgb, aspect="auto")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                role = grid.iat[i, j]
                if role == "mixed":
                    ax.text(j, i, f"{share.iat[i, j]:.0%}\ntest", ha="center", va="center",
                            fontsize=7)
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, fontsize=8)
        ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=8)
        ax.set_title(f"{names.get(criterion, criterion)}, fold {fold}", fontsize=9)
        ax.set_xlabel(columns, fontsize=8)
    axes[0, 0].set_ylabel(rows, fontsize=8)
    fig.legend(handles=[Patch(color=_ROLE_COLORS[r], label=r) for r in (*ROLES, "mixed")],
               loc="lower center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# -- 03 / 04 models: blocks of named layers -----------------------------------------------------
# A block is one layer of the paper's Fig. 1 (L_T1 ... L_A4), a fusion layer (F_*, X_*), an input
# or a softmax. Layers named after a block with a suffix (L_T1_bn, L_T1_relu, L_T1_zero,
# L_A2_dropout) are folded into it; the rest (masks, padding) carry no weights and are left out.
_BLOCK = re.compile(r"^(?:L_[TA]\d+|[FX]_(?!mask$)[a-z]+|.*_softmax)$")
_HELPER = re.compile(r"^(?P<block>.+)_(?P<part>bn|relu|zero|dropout)$")
_KIND_NAMES = {"Dense": "dense", "Conv1D": "conv 1-D", "MaskedMean": "masked mean",
               "InputLayer": "input", "Activation": "softmax", "Concatenate": "concat",
               "MultiHeadAttention": "attention"}


def _shape(layer) -> str:
    out = layer.output[0] if isinstance(layer.output, (list, tuple)) else layer.output
    shape = tuple(out.shape)[1:]  # without the batch axis
    return "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"


def _helper_label(layer) -> str | None:
    """What a folded helper layer does, from its class: "dropout", "BN", "BN, ReLU", "ReLU";
    None for re-masking (shown by "masked mean")."""
    cls = type(layer).__name__
    if cls == "Dropout":
        return "dropout"
    if "BatchNorm" in cls:
        return "BN, ReLU" if "ReLU" in cls else "BN"
    if cls == "Activation":
        return {"relu": "ReLU"}.get(layer.activation.__name__, layer.activation.__name__)
    return None


def layer_blocks(model) -> pd.DataFrame:
    """The blocks of a Keras model, in the model's layer order.

    Parameters
    ----------
    model : keras.Model
        A model of :mod:`ser_utils.models` (unimodal or fusion).

    Returns
    -------
    pandas.DataFrame, one row per block
        ``block`` (layer name), ``kind`` (dense, conv 1-D, masked mean, ...), ``extras``
        (folded helper layers, e.g. "BN, ReLU"; "dropout" first: it acts at the block's
        input), ``shape`` (output shape without the batch axis, ``T`` = time), ``params``
        (weights of the block, helpers included), ``trainable`` (True / False for blocks with
        weights, None for blocks without).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    rows: dict[str, dict] = {}
    helpers = []
    for layer in model.layers:
        if _HELPER.match(layer.name):
            helpers.append((_HELPER.match(layer.name)["block"], layer))
        elif (_BLOCK.match(layer.name) or type(layer).__name__ == "InputLayer"
              or layer.weights):  # a layer with weights is never left out
            rows[layer.name] = {
                "block": layer.name,
                "kind": _KIND_NAMES.get(type(layer).__name__, type(layer).__name__),
                "extras": [], "shape": _shape(layer), "weights": list(layer.weights),
                "trainable": [layer.trainable] if layer.weights else []}
    for block, layer in helpers:
        row = rows.get(block)
        if row is None:
            continue
        label = _helper_label(layer)
        if label:
            row["extras"].append(label)
        row["weights"] += list(layer.weights)
        if layer.weights:
            row["trainable"].append(layer.trainable)
    out = pd.DataFrame(list(rows.values()))
    out["params"] = [int(sum(np.prod(w.shape) for w in ws)) for ws in out["weights"]]
    out["trainable"] = [any(t) if t else None for t in out["trainable"]]
    out["extras"] = [", ".join(sorted(e, key=lambda p: p != "dropout")) for e in out["extras"]]
    return out.drop(columns="weights")


_BLOCK_COLORS = {"input": "#f0f0f0", "dense": "#c6dbef", "conv 1-D": "#9ecae1",
                 "masked mean": "#fdd0a2", "softmax": "#d9d9d9", "concat": "#e5f5e0",
                 "attention": "#dadaeb"}


def plot_model_blocks(models: Mapping[str, object], *, title: str = ""):
    """Fig. 1 drawn from Keras models: one column of boxes per model, one box per block of
    :func:`layer_blocks` (name, kind, folded BN / ReLU / dropout, output shape, weights), from the
    input at the top to the softmax at the bottom.

    Parameters
    ----------
    models : mapping title -> keras.Model
        E.g. ``{"text (BERT)": build_text_model(768), "audio": build_audio_model(36)}``.

    Notebook: notebooks/03_unimodal.ipynb
    """
    blocks = {name: layer_blocks(m) for name, m in models.items()}
    n = max(len(b) for b in blocks.values())
    fig, axes = plt.subplots(1, len(models), figsize=(3.9 * len(models), 0.82 * n + 0.6),
                             squeeze=False)
    for ax, (name, b) in zip(axes[0], blocks.items(), strict=False):
        ax.set(xlim=(0, 1), ylim=(n - 0.4, -0.7))
        ax.axis("off")
        ax.set_title(name, fontsize=10)
        for i, r in enumerate(b.itertuples()):
            ax.add_patch(FancyBboxPatch((0.05, i - 0.34), 0.9, 0.68, boxstyle="round,pad=0.01",
                                        fc=_BLOCK_COLORS.get(r.kind, "white"), ec="0.3", lw=0.8))
            extras = r.extras.split(", ") if r.extras else []
            rest = [e for e in extras if e != "dropout"]  # dropout acts at the block's input
            kind = ("dropout → " if "dropout" in extras else "") + r.kind + (
                f" + {', '.join(rest)}" if rest else "")
            ax.text(0.5, i - 0.1, f"{r.block}: {kind}", ha="center", va="center", fontsize=8,
                    weight="bold")
            detail = r.shape + (f"   {r.params:,} weights" if r.params else "")
            ax.text(0.5, i + 0.17, detail, ha="center", va="center", fontsize=7.5)
            if i:
                ax.annotate("", (0.5, i - 0.35), (0.5, i - 0.65),
                            arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8})
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# -- 04 fusion: which blocks train -----------------------------------------------------------
def build_systems(systems, *, text_dim: int, audio_dim: int | None = None) -> dict:
    """Fresh, untrained Keras models of ``systems`` (unimodal or fusion), built as training
    builds them (``systems.SYSTEMS`` gives each fusion's kind and start); the weights
    are random, the layers, shapes and ``trainable`` flags are the real ones.

    Parameters
    ----------
    systems : sequence of str
        E.g. ``("audio", "bert")`` or ``("ef_cs", "ef_pt", "ef_ws", "lf_pt")``.
    text_dim : int, keyword-only
        Width of a text token (the run's BERT / GloVe width; ``features.json``).
    audio_dim : int, keyword-only
        Width of an audio frame; default the descriptors and their first differences (36).

    Returns
    -------
    dict
        ``{system: keras.Model}`` in the order of ``systems``.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    from . import models as M
    from .features.acoustic import AUDIO_DIM
    from .systems import SYSTEMS

    audio_dim = audio_dim or AUDIO_DIM
    out = {}
    for system in systems:
        kind, start = SYSTEMS[system].kind, SYSTEMS[system].start
        if system == "audio":
            out[system] = M.build_audio_model(audio_dim)
        elif kind == "unimodal":
            out[system] = M.build_text_model(text_dim, name=system)
        else:
            branches = M.build_text_model(text_dim), M.build_audio_model(audio_dim)
            out[system] = (M.build_crossmodal_model(*branches, start=start)
                           if kind == M.CROSS_KIND else
                           M.build_fusion_model(*branches, kind=kind, start=start))
    return out


def trainable_table(models: Mapping[str, object]) -> pd.DataFrame:
    """Which blocks with weights train, per fusion model, read from the built models' flags.

    Parameters
    ----------
    models : mapping system name -> keras.Model

    Returns
    -------
    pandas.DataFrame, shape (n_blocks, n_models)
        Rows: every block with weights of any model (text branch, audio branch, then the merge,
        in layer order); cells "trains", "frozen", or "" when the model has no such block.

    Notebook: notebooks/04_fusion.ipynb
    """
    cols = {}
    for name, m in models.items():
        b = layer_blocks(m)
        b = b[b["trainable"].notna()]
        cols[name] = pd.Series(np.where(b["trainable"].astype(bool), "trains", "frozen"),
                               index=b["block"])
    seen = list(dict.fromkeys(k for s in cols.values() for k in s.index))
    rank = {"T": 0, "A": 1}  # text branch, audio branch, then the layers after the merge
    order = sorted(seen, key=lambda k: (rank.get(k[2], 2) if k.startswith("L_") else 2,
                                        seen.index(k)))
    return pd.DataFrame(cols).reindex(order).fillna("")


def plot_trainable(table: pd.DataFrame):
    """A grid of :func:`trainable_table`: blocks x systems, trains / frozen / absent.

    Notebook: notebooks/04_fusion.ipynb
    """
    colors = {"trains": "#31a354", "frozen": "#bdbdbd", "": "white"}
    rgb = np.array([[to_rgb(colors[v]) for v in row]
                    for row in table.to_numpy()])
    fig, ax = plt.subplots(figsize=(0.95 * table.shape[1] + 1.6, 0.32 * table.shape[0] + 1.2))
    ax.imshow(rgb, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, fontsize=8)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=8)
    ax.set_xticks(np.arange(table.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(table.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.xaxis.tick_top()
    fig.legend(handles=[Patch(color=colors["trains"], label="trains"),
                        Patch(color=colors["frozen"], label="frozen"),
                        Patch(facecolor="white", edgecolor="0.6", label="not in the model")],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
