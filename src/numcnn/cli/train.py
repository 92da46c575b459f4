"""``numcnn train``: its flags, the TrainConfig they make, and the command."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..validation import non_negative_float, non_negative_int, positive_float, positive_int
from .common import add_no_download


def add_parser(sub) -> None:
    from ..models import MODELS
    from ..trainconfig import DATASETS, DEFAULT_MOMENTUM, OPTIMIZERS, SCHEDULERS, TrainConfig

    # every run setting defaults to None here: a resumed run takes its saved settings, and
    # only the flags a user actually typed are checked against them
    d = TrainConfig()
    p = sub.add_parser("train", help="train a model on MNIST or Fashion-MNIST",
                       description="Train a model, evaluate it on the test split after every "
                                   "epoch, write metrics.jsonl and checkpoints to --out. A "
                                   "folder that holds a run is never overwritten: continue it "
                                   "with --resume (with its saved settings) or replace it with "
                                   "--overwrite.")
    p.add_argument("--model", choices=sorted(MODELS), help=f"architecture (default: {d.model})")
    p.add_argument("--dataset", choices=sorted(DATASETS), help=f"data set (default: {d.dataset})")
    p.add_argument("--epochs", type=positive_int,
                   help=f"total number of epochs (default: {d.epochs}); with --resume, training "
                        "continues up to this total and the schedule is re-planned for it")
    p.add_argument("--batch-size", type=positive_int, help=f"images per step (default: {d.batch_size})")
    p.add_argument("--lr", type=positive_float,
                   help="learning rate (default: 0.05 for sgd, 1e-3 for adam on lenet5)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default: {d.optimizer})")
    p.add_argument("--momentum", type=non_negative_float, help=f"SGD momentum, Nesterov when > 0 (default: {DEFAULT_MOMENTUM}; sgd only)")
    p.add_argument("--weight-decay", type=non_negative_float, help=f"L2 penalty (default: {d.weight_decay})")
    p.add_argument("--scheduler", choices=SCHEDULERS,
                   help=f"learning-rate schedule, stepped every batch (default: {d.scheduler})")
    p.add_argument("--activation", choices=("tanh", "relu"), default=None,
                   help="lenet5 activation (default: tanh, as in the paper)")
    p.add_argument("--width", type=positive_int, default=None,
                   help="convnet channels of the first block (default: 32; 16 is 4x cheaper)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (default: on for convnet, off for lenet5)")
    p.add_argument("--seed", type=non_negative_int, help=f"seed of initialization, shuffling, dropout (default: {d.seed})")
    p.add_argument("--out", default=None, help="output folder (default: runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT with its saved settings (a flag that "
                        "contradicts them is an error; --epochs may extend the run)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUT (its checkpoints, metrics and figures)")
    p.add_argument("--patience", type=positive_int, default=None, metavar="N",
                   help="early stopping: end the run after N epochs without a better test "
                        "accuracy (default: never)")
    p.add_argument("--log-lr", action="store_true", default=None,
                   help="record the learning rate of every step (lr_steps in metrics.jsonl)")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ and fashion-mnist/ (default: $NUMCNN_DATA, the bundled data, the user cache)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first K training images")
    p.add_argument("--test-limit", type=positive_int, default=None, help="use only the first K test images")
    p.add_argument("--dtype", choices=("float32", "float64"), help=f"(default: {d.dtype})")
    add_no_download(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: only on a terminal)")
    p.add_argument("--distributed", action="store_true",  # distributed: numcnn.distributed
                   help="data-parallel training over MPI: mpirun -n K numcnn train "
                        "--distributed ...; --batch-size is the global batch, split over the "
                        "K ranks (needs pip install 'numcnn[mpi]')")
    p.set_defaults(func=cmd_train)


#: ``numcnn train`` flags that set a TrainConfig field of the same name.
_TRAIN_FIELDS = ("model", "dataset", "epochs", "batch_size", "lr", "optimizer", "momentum",
                 "weight_decay", "scheduler", "seed", "limit", "test_limit", "dtype", "augment",
                 "patience", "log_lr")


def train_config(args):
    """The TrainConfig of ``numcnn train``: the flags given on top of the defaults, or, with
    ``--resume``, on top of the run's saved settings (a contradicting flag is an error)."""
    from .. import rundir
    from ..train import TrainConfig

    flags = {k: getattr(args, k) for k in _TRAIN_FIELDS if getattr(args, k) is not None}
    options = {}
    if args.activation is not None:
        options["activation"] = args.activation
    if args.width is not None:
        options["width"] = args.width
    if args.out is not None and args.out.strip() == "":
        raise UserError("--out must name a folder, got an empty string")
    where = {"resume": args.resume, "overwrite": args.overwrite, "data_dir": args.data_dir,
             "progress": args.progress, "download": args.download,
             "distributed": args.distributed}
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite exclude each other: --resume continues the "
                        "run in --out, --overwrite replaces it")
    out = args.out or (f"runs/{flags.get('model', TrainConfig.model)}-"
                       f"{flags.get('dataset', TrainConfig.dataset)}")
    saved = rundir.saved_settings(out)[0] if args.resume else None
    model = flags.get("model") or (saved or {}).get("model") or TrainConfig.model
    if "activation" in options and model != "lenet5":
        raise UserError("--activation applies to --model lenet5 only")
    if "width" in options and model != "convnet":
        raise UserError("--width applies to --model convnet only")
    optimizer = flags.get("optimizer") or (saved or {}).get("optimizer") or TrainConfig.optimizer
    if "momentum" in flags and optimizer != "sgd":
        raise UserError(f"--momentum applies to --optimizer sgd only, not {optimizer}")
    settings = {**flags, **where, "out": out, "model_options": options}
    if saved is not None:  # continue the run in --out with its own settings
        return rundir.resume_config(out, settings)
    return TrainConfig(**settings)


def cmd_train(args) -> int:
    import numpy as np

    from ..distributed import launched_ranks  # imports no MPI
    from ..train import fit

    if not args.distributed and launched_ranks() > 1:
        raise UserError(f"started as {launched_ranks()} MPI processes: add --distributed, or "
                        "each process trains alone and they overwrite each other's files")
    config = train_config(args)
    # a diverging run ends with TrainingDiverged; numpy's overflow warnings on the way are noise
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fit(config)
    return 0
