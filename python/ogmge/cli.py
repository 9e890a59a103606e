"""`ogmge` / `python -m ogmge`: export shards to a reference program's layout, or describe them."""

import argparse
import sys

from .export import FLAVOURS, LAYOUTS, export
from .shards import open_splits


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ogmge", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write the shards in the layout a reference program reads")
    e.add_argument("layout", choices=LAYOUTS, help="ogm-ge: OGM-GE's AVDataset; balancebenchmark: BalanceBenchmark's dataset classes")
    e.add_argument("shards", help="a dataset's shard folder (the one holding index.json, e.g. out/cremad)")
    e.add_argument("out", help="the new folder to write (must not exist or be empty)")
    e.add_argument("--flavour", choices=FLAVOURS, help="BalanceBenchmark's class to write for (default: cremad for CREMA-D, vggsound for VGGSound, ks otherwise)")
    e.add_argument("--force", action="store_true", help="export even when the reader's frame rule would leave out every clip of a split")
    i = sub.add_parser("info", help="print a dataset's splits, classes and audio shape")
    i.add_argument("shards")
    args = p.parse_args(argv)
    try:
        if args.command == "export":
            done = [0]

            def tick():
                done[0] += 1
                if done[0] % 100 == 0:
                    print(f"\r  {done[0]} clips written", end="", file=sys.stderr, flush=True)

            counts = export(args.shards, args.out, args.layout, args.flavour, tick, force=args.force)
            if done[0] >= 100:
                print(file=sys.stderr)
            print(f"exported {', '.join(f'{n} {s}' for s, n in counts.items())} clips to {args.out} ({args.layout})")
        else:
            for split, s in open_splits(args.shards).items():
                m = s.meta
                print(f"{split}: {len(s)} clips, dataset {m.dataset}, audio {m.audio_shape} {m.audio_dims}, {len(m.classes)} classes")
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
