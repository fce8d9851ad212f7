"""The training protocol (Sec. 3, 4.1): one (system, criterion, fold, seed) job at a time, and grids
of jobs run in parallel processes (joblib, optionally on a Dask cluster).

A job trains one system on the training part of one fold from one seed for a fixed number of
epochs, predicts the test part, and writes the per-utterance class probabilities::

    <out_dir>/predictions/<system>-<size>__<criterion>__fold<k>__seed<s>.parquet
    <out_dir>/models/<same stem>.weights.h5 | .normaliser.json
    <out_dir>/logs/<same stem>.json

(:mod:`.layout` is the one place that knows these paths.) The prediction file is written last,
so its presence means the job is finished: a grid that is run again skips it (an interrupted
grid resumes with the finished jobs kept).

Protocol (Sec. 3): Adam with lr 7e-4 and a 40-step linear warm-up (fusion learning rates from
:data:`ser_utils.systems.SYSTEMS`); cross-entropy weighted by inverse class frequency of the
training labels; a fixed number of epochs (no early stopping), chosen beforehand by
:func:`select_epochs` as the epoch with the best median validation AvAUC over seeds; batches of
:data:`BATCH_SIZE` utterances of similar length (sort-by-length buckets), reshuffled every epoch.
One seed fixes everything (weights, data order, dropout) and TensorFlow runs with op
determinism, so the same job gives the same predictions twice, in any process.

Training processes read the features from the cache files (:meth:`ExperimentData.from_files`);
they never run openSMILE.

The package is split by concern:

- :mod:`.data`: :class:`ExperimentData` (the features of a dataset), the audio normaliser,
  class weights and the input streams of a system;
- :mod:`.batches`: ``tf.data`` batches of zero-padded sequences;
- :mod:`.fitting`: :func:`fit`, which builds, trains and recalibrates one job's model (the
  stages, epoch selection and the export of notebook 06 all train with it);
- :mod:`.batchnorm`: :func:`recalibrate_batchnorm` (precise BN statistics);
- :mod:`.jobs`: :class:`Job` and :func:`train_job` (one fold, one seed, written to disk);
- :mod:`.layout`: where predictions, weights, normalisers and logs go;
- :mod:`.selection`: :func:`select_epochs` (Sec. 3);
- :mod:`.grid`: :func:`run_grid`, jobs in parallel processes or on a Dask cluster;
- :mod:`.export`: :func:`fit_for_export`, a job and its audio model trained again for
  :func:`ser_utils.inference.export_model` (notebook 06).
"""
from ..folds import LeakageError
from ..systems import CLASSES, FUSION_SYSTEMS, SIZES, SYSTEMS, UNIMODAL_SYSTEMS
from .batches import BATCH_SIZE, PREDICT_BATCH_SIZE
from .batchnorm import recalibrate_batchnorm
from .data import ExperimentData, class_weights, fit_normaliser
from .export import Fitted, fit_for_export
from .fitting import Trained, fit
from .grid import run_grid
from .jobs import DEFAULT_EPOCHS, Job, train_job
from .layout import prediction_path, pretrained_files
from .selection import select_epochs

__all__ = [
    "CLASSES",
    "SYSTEMS",
    "UNIMODAL_SYSTEMS",
    "FUSION_SYSTEMS",
    "SIZES",
    "BATCH_SIZE",
    "PREDICT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "ExperimentData",
    "Job",
    "Trained",
    "fit",
    "Fitted",
    "fit_for_export",
    "fit_normaliser",
    "class_weights",
    "train_job",
    "recalibrate_batchnorm",
    "select_epochs",
    "run_grid",
    "prediction_path",
    "pretrained_files",
    "LeakageError",
]
