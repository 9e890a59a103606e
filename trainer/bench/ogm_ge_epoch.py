"""One training epoch of OGM-GE's own program over a `cargo xtask export ogm-ge` tree, timed end to end.

The program users would otherwise run, as it is: given the path of a checkout of OGM-GE's code
(GeWu-Lab/OGM-GE_CVPR2022, never copied into this repository), this imports its `main.py`,
`dataset/dataset.py::AVDataset`, `models/basic_model.py::AVClassifier` and `utils/utils.py`
unmodified, builds the model, optimiser and scheduler as its `main()` does (`setup_seed`,
`weight_init`, `DataParallel`, SGD with momentum 0.9 and weight decay 1e-4, StepLR) with
`get_arguments()`'s defaults, and runs its `train_epoch` over a PyTorch DataLoader with one worker
per core. Timed: the whole `train_epoch` call, from the loader's first batch to the scheduler's
step, loading included (evaluation not run).

Two things differ from `python main.py --train`, both forced by the original code:
- `AVDataset.__getitem__` returns four items (spectrogram, frames, label, clip id) and
  `train_epoch` unpacks three (main.py L70), so the original fails at its first batch on KS and
  AVE; the loader here is wrapped to drop the clip id.
- `main()` moves the model to `cuda:0`; here everything stays on the CPU (`DataParallel` with no
  GPU calls the module directly, so the parameter names `train_epoch` matches are the same), and
  `pin_memory` is off (it needs an accelerator).

`AVDataset` reads `../data/<dataset>/` relative to the working directory: the script makes a
temporary folder whose `data/<dataset>` points at the export and runs from beside it.

Prints one JSON object (and writes it to --json): samples, seconds, samples/s per epoch.
"""

import argparse
import json
import os
import sys
import tempfile
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", required=True, help="a checkout of OGM-GE_CVPR2022 (holds main.py)")
    p.add_argument("--data", required=True, help="an export: `cargo xtask export ogm-ge SHARDS DIR`")
    p.add_argument("--dataset", default="KineticSound", choices=["KineticSound", "AVE"], help="which of its AVDataset datasets the export stands for (sets the head's class count: 31 / 28)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--alpha", type=float, default=0.8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="DataLoader workers (default: one per core)")
    p.add_argument("--json", help="also write the result here")
    a = p.parse_args()

    checkout = os.path.abspath(a.checkout)
    data = os.path.abspath(a.data)
    out = os.path.abspath(a.json) if a.json else None  # before the chdir below
    if not os.path.isfile(os.path.join(checkout, "main.py")):
        print(f"error: {checkout} holds no main.py: not a checkout of OGM-GE_CVPR2022", file=sys.stderr)
        return 2
    for f in ("stat.txt", "my_train.txt", "audio_spec", "visual"):
        if not os.path.exists(os.path.join(data, f)):
            print(f"error: {data} has no {f}: not an `export ogm-ge` folder", file=sys.stderr)
            return 2

    import torch
    from torch.utils.data import DataLoader

    sys.path.insert(0, checkout)
    import main as ogm  # their main.py: get_arguments, train_epoch
    from dataset.dataset import AVDataset
    from models.basic_model import AVClassifier
    from utils.utils import setup_seed, weight_init

    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "data"))
        os.symlink(data, os.path.join(tmp, "data", a.dataset))
        os.makedirs(os.path.join(tmp, "run"))
        os.chdir(os.path.join(tmp, "run"))
        sys.argv = ["main.py", "--dataset", a.dataset, "--alpha", str(a.alpha), "--batch_size", str(a.batch), "--ckpt_path", os.path.join(tmp, "ckpt"), "--train"]
        args = ogm.get_arguments()

        setup_seed(args.random_seed)
        device = torch.device("cpu")
        model = AVClassifier(args)
        model.apply(weight_init)
        model.to(device)
        model = torch.nn.DataParallel(model, device_ids=[])
        optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, args.lr_decay_step, args.lr_decay_ratio)

        train_dataset = AVDataset(args, mode="train")
        loader = DataLoader(train_dataset, batch_size=args.batch_size, shuffle=True, num_workers=a.workers, pin_memory=False)

        class ThreeItems:
            """The loader, each batch without its clip ids (see the module's docstring)."""

            def __len__(self):
                return len(loader)

            def __iter__(self):
                for spec, image, label, _ in loader:
                    yield spec, image, label

        epochs = []
        for epoch in range(a.epochs):
            start = time.perf_counter()
            loss, loss_a, loss_v = ogm.train_epoch(args, epoch, model, device, ThreeItems(), optimizer, scheduler)
            seconds = time.perf_counter() - start
            epochs.append({"epoch": epoch, "seconds": seconds, "loss": loss, "loss_a": loss_a, "loss_v": loss_v})

    n = len(train_dataset)
    result = {
        "program": "OGM-GE main.py train_epoch",
        "dataset": a.dataset,
        "samples": n,
        "batch": a.batch,
        "workers": a.workers,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "epochs": epochs,
        "seconds": epochs[0]["seconds"],
        "samples_per_s": n / epochs[0]["seconds"],
    }
    print(json.dumps(result))
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
