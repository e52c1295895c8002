"""The ``magenta-live`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from live import __version__
from live.errors import LiveError


def _cmd_import(args: argparse.Namespace) -> int:
    """Convert a .mag bundle once into the project's model file (the only step that needs TensorFlow)."""
    from live.models.mag import load_mag

    model = load_mag(args.bundle)
    model.save(args.output)
    cfg = model.config
    attn = f", attention {cfg.attention_scope} layer(s), length {cfg.attn_length}" if cfg.attn_length else ""
    print(f"{args.bundle}: {cfg.config_id}, layers {cfg.layer_sizes}{attn} -> {args.output}")
    return 0


def _cmd_configs(args: argparse.Namespace) -> int:
    """List the configurations the engine knows."""
    from live.models.configs import CONFIGS

    for spec in CONFIGS.values():
        print(f"{spec.config_id:<52} {spec.family:<12} {spec.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="magenta-live",
        description="A real-time MIDI co-performer driven by Magenta-family RNN models.",
    )
    parser.add_argument("--version", action="version", version=f"magenta-live {__version__}")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("import", help="convert a Magenta .mag bundle to a magenta-live model file (.npz)")
    p.add_argument("bundle", help="path to the .mag bundle")
    p.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("configs", help="list the Magenta configurations the engine knows")
    p.set_defaults(func=_cmd_configs)

    from live import generate

    p = sub.add_parser("generate", help="generate MIDI files offline, like Magenta's *_generate scripts")
    generate.add_arguments(p)
    p.set_defaults(func=generate.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FileNotFoundError as err:
        print(f"magenta-live: {err}", file=sys.stderr)
        return 1
    except LiveError as err:
        print(f"magenta-live: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
