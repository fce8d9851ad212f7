"""Command line of the package: class probabilities of new recordings.

Usage::

    python -m ser_utils predict --model DIR --wav a.wav [b.wav ...] [--text "..." [...]] [--json]

``DIR`` is a folder written by :func:`ser_utils.inference.export_model` (notebook 06 writes one
under ``results/<profile>/<dataset>/inference/``). Give one ``--text`` per ``--wav``, in the same
order, ``""`` for a recording without a transcript; without ``--text`` at all every recording is
answered by the exported audio model (with a note). Exit status: 0 on success, 2 on bad input
(missing model folder or audio file, unreadable audio, transcripts not matching the recordings).

Notebook: notebooks/06_inference.ipynb
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# `python -m ser_utils` has already run ser_utils/__init__, so openSMILE is loaded before
# TensorFlow and the descriptors are computed in this process.


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ser_utils", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Speech emotion recognition with the book's trained models.",
        epilog="example:\n  python -m ser_utils predict --model results/quick/iemocap_demo/"
               "inference/<stem> \\\n      --wav a.wav b.wav --text \"I can't believe it.\" ''")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    pr = sub.add_parser("predict", help="class probabilities of recordings",
                        description="Class probabilities of recordings from an exported model.")
    pr.add_argument("--model", required=True, metavar="DIR",
                    help="folder written by ser_utils.inference.export_model")
    pr.add_argument("--wav", required=True, nargs="+", metavar="WAV",
                    help="audio file(s): any format, sample rate and channel count")
    pr.add_argument("--text", nargs="+", metavar="TEXT",
                    help="one transcript per --wav, same order; '' for none (the audio model "
                         "answers)")
    pr.add_argument("--json", action="store_true",
                    help="print a JSON list (one object per recording) instead of a table")
    return p


def _table(df, columns) -> str:
    shown = df.assign(wav=[Path(w).name for w in df["wav"]])
    shown = shown[["wav", "model", *columns, "predicted"]]
    shown.columns = ["wav", "model", *(c.removeprefix("p_") for c in columns), "predicted"]
    lines = [shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    lines += [f"note: {Path(w).name}: {n}"
              for w, n in zip(df["wav"], df["note"], strict=True) if n]
    return "\n".join(lines)


def _records(df, classes, columns) -> list[dict]:
    return [{"wav": r["wav"], "text": r["text"], "model": r["model"],
             "probabilities": {c: float(r[col]) for c, col in zip(classes, columns, strict=False)},
             "predicted": r["predicted"], "note": r["note"] or None}
            for _, r in df.iterrows()]


def predict(args: argparse.Namespace) -> int:
    def fail(message: str) -> int:
        print(f"python -m ser_utils predict: error: {message}", file=sys.stderr)
        return 2

    # cheap checks first: no TensorFlow / BERT start-up for a typo
    if args.text is not None and len(args.text) != len(args.wav):
        return fail(f"give one --text per --wav ({len(args.wav)} recordings, {len(args.text)} "
                    "transcripts); use '' for a recording without transcript")
    missing = [w for w in args.wav if not Path(w).is_file()]
    if missing:
        return fail("audio file(s) not found: " + ", ".join(missing))
    from .features.acoustic import AudioFileError
    from .inference import SPEC_FILE, Predictor

    if not (Path(args.model) / SPEC_FILE).is_file():
        return fail(f"{args.model} is not an exported model folder (no {SPEC_FILE}); export one "
                    "with ser_utils.inference.export_model or notebooks/06_inference.ipynb")
    try:
        predictor = Predictor.load(args.model)
        df = predictor.predict_batch(args.wav, args.text)
    except (AudioFileError, FileNotFoundError, ValueError) as e:
        return fail(str(e))
    columns = predictor.proba_columns
    if args.json:
        print(json.dumps(_records(df, predictor.classes, columns), indent=2))
    else:
        print(_table(df, columns))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "predict":
        return predict(args)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
