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


def _cmd_ports(args: argparse.Namespace) -> int:
    """List the MIDI inputs and outputs of the chosen backend."""
    from live.midi_io.ports import list_ports_text

    print(list_ports_text(args.backend))
    return 0


def _channel(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"a MIDI channel is 1..16, not {value}")
    return value


def _add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("the live daemon (runs when no COMMAND is given)")
    g.add_argument("--backend", default="auto", choices=["auto", "alsa", "jack", "coremidi", "winmm"],
                   help="MIDI backend; auto takes the platform's own, or JACK when only a JACK server runs")
    g.add_argument("--list-ports", action="store_true", help="list MIDI inputs and outputs, then exit")
    g.add_argument("--input-port", action="append", default=[], metavar="NAME",
                   help="listen to this existing port (exact name, unique part of a name, or index; may repeat); "
                        "default: a virtual port \"magenta-live in\"")
    g.add_argument("--output-port", action="append", default=[], metavar="NAME",
                   help="play to this existing port (may repeat); default: a virtual port \"magenta-live out\"")
    g.add_argument("--input-channel", action="append", type=_channel, metavar="1-16",
                   help="only hear these channels (may repeat); default: all")
    g.add_argument("--passthrough", action="store_true", help="forward the player's notes to the outputs")
    g.add_argument("--clock", default="internal", choices=["internal", "midi"],
                   help="internal: the daemon keeps time at --bpm; midi: follow MIDI clock from --clock-port")
    g.add_argument("--clock-port", metavar="NAME", help="the port MIDI clock comes from (with --clock midi)")
    g.add_argument("--clock-out", metavar="NAME", help="send MIDI clock (0xF8, Start, Stop) to this port")
    g.add_argument("--bpm", type=float, default=120.0, help="tempo of the internal clock, beats per minute")
    g.add_argument("--max-note-seconds", type=float, default=8.0, help="longest a note may sound (seconds)")
    g.add_argument("--realtime-priority", type=int, metavar="1-99",
                   help="ask for SCHED_FIFO at this priority for the clock and output threads (needs an rtprio "
                        "limit; with a realtime JACK server this keeps scheduling error under 0.1 ms under load)")
    g.add_argument("--no-ui", action="store_true", help="run headless (the terminal panel is not built yet: "
                   "the daemon always runs headless in this version)")


def _run_daemon(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or Ctrl-C; every sounding note gets its note-off on the way out."""
    import signal

    from live.daemon import Daemon, DaemonOptions

    options = DaemonOptions(
        backend=args.backend,
        input_ports=args.input_port,
        output_ports=args.output_port,
        input_channels=args.input_channel,
        passthrough=args.passthrough,
        clock=args.clock,
        clock_port=args.clock_port,
        clock_out=args.clock_out,
        bpm=args.bpm,
        max_note_seconds=args.max_note_seconds,
        realtime_priority=args.realtime_priority,
    )
    daemon = Daemon(options)
    # rtmidi's JACK callback runs in JACK's process thread and needs the GIL for the few
    # microseconds it takes to stamp and queue a message; with Python's default 5 ms switch
    # interval a busy daemon thread makes JACK drop input. The daemon owns its process, so it
    # asks for a short interval here (the library leaves process-wide settings alone).
    sys.setswitchinterval(0.0005)

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger("live").info("signal %d: stopping", signum)
        daemon.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with daemon:
            print("magenta-live: listening on " + ", ".join(p.name for p in daemon.inputs)
                  + "; playing to " + ", ".join(p.name for p in daemon.outputs), flush=True)
            daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="magenta-live",
        description="A real-time MIDI co-performer driven by Magenta-family RNN models.",
    )
    parser.add_argument("--version", action="version", version=f"magenta-live {__version__}")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    _add_daemon_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ports", help="list MIDI inputs and outputs")
    p.add_argument("--backend", default=argparse.SUPPRESS, choices=["auto", "alsa", "jack", "coremidi", "winmm"])
    p.set_defaults(func=_cmd_ports)

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
        args.func = _cmd_ports if args.list_ports else _run_daemon
    try:
        return int(args.func(args) or 0)
    except FileNotFoundError as err:
        print(f"magenta-live: {err}", file=sys.stderr)
        return 1
    except (LiveError, ValueError) as err:
        print(f"magenta-live: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
