"""``magenta-live-train``: the training tools (convert, dataset, train, eval, export).

They are the next milestone after the engine; until they land this command says so instead of
failing with an import error.
"""

from __future__ import annotations

import sys

PLANNED = ("convert", "dataset", "train", "export")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    wanted = args[0] if args else "a subcommand"
    print(
        f"magenta-live-train: {wanted} is not available yet. The training tools "
        f"({', '.join(PLANNED)}) are not built in this version; "
        "`magenta-live import` converts existing Magenta .mag bundles.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
