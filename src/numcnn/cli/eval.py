"""``numcnn eval``: test loss, accuracy, per-class accuracy and confusion matrix of a checkpoint."""
from __future__ import annotations

from ..errors import UserError
from ..validation import positive_int
from .common import add_no_download


def add_parser(sub) -> None:
    from ..train import DATASETS

    p = sub.add_parser("eval", help="test loss, accuracy and confusion matrix of a checkpoint")
    p.add_argument("checkpoint", help="a .npz checkpoint written by numcnn train")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                   help="data set (default: the one the checkpoint was trained on)")
    p.add_argument("--data-dir", default=None, help="folder holding the data sets")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first K test images")
    p.add_argument("--batch-size", type=positive_int, default=500)
    add_no_download(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from ..data import DataLoader
    from ..train import DATASETS, checkpoint_dataset, evaluate, load_model, preprocessing

    model, payload = load_model(args.checkpoint)
    dataset = args.dataset or checkpoint_dataset(payload, args.checkpoint)
    dtype = next(iter(model.state_dict().values())).dtype
    base, _, normalize = preprocessing(model.arch, dataset, False, dtype)
    test = DATASETS[dataset](args.data_dir, train=False, transform=base, limit=args.limit,
                             download=args.download)
    if len(test) == 0:
        raise UserError(f"there is no test data: the {dataset} test split holds no images")
    result = evaluate(model, DataLoader(test, args.batch_size, transform=normalize),
                      len(test.classes))
    print(f"{args.checkpoint}: {model.arch} on {dataset} test ({len(test)} images)")
    print(f"test loss {result['loss']:.4f}  accuracy {100 * result['accuracy']:.2f}%")
    print("per-class accuracy: " + "  ".join(
        f"{name} {100 * a:.1f}%" for name, a in zip(test.classes, result["per_class_accuracy"])))
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(5, len(str(result["confusion"].max())) + 1)
    print(" " * 12 + "".join(f"{k:>{width}}" for k in range(len(test.classes))))
    for name, row in zip(test.classes, result["confusion"]):
        print(f"{name[:11]:>11} " + "".join(f"{v:>{width}}" for v in row))
    return 0
