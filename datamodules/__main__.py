"""`python -m datamodules`: dataset tools that need no model.

    python -m datamodules validate --list L --labels C [--root R [--root-layout by-name]] [--frames T] [--json]
    python -m datamodules splits {kshot,base-novel,long-tail} --list L ...
    python -m datamodules features --model-class C --model-args JSON --list L --video-root R --out DIR

`validate` checks a list against its label file and videos (exit code 1 on errors; every listed clip is
decoded with the training decoder's checks, so truncated or corrupt files are listed); `splits` writes
seeded K-shot, base/novel and long-tailed lists in the input list's format; `features` caches the (32, D)
segment features of every video of a UCF-Crime list or manifest for the anomaly task (any net with
`encode_video`, named by class path).
"""

from __future__ import annotations

import argparse
import logging

from datamodules import features, splits, validate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datamodules", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate.add_parser(commands)
    splits.add_parser(commands)
    features.add_parser(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
