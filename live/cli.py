"""The ``magenta-live`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from live import __version__
from live.errors import LiveError, OutputPathError, SettingError
from live.files import check_writable, same_file
from live.midi_io.backends import BACKEND_CHOICES
from live.protocol import MODES
from live.settings import NUMBERS as N
from live.settings import OneLineParser


def _cmd_import(args: argparse.Namespace) -> int:
    """Convert a .mag bundle (or a Magenta MusicVAE checkpoint) once into the project's model
    file (the only step that needs TensorFlow)."""
    from live.models import save
    from live.models.mag import load_mag

    check_writable(args.output, "--output")
    if same_file(args.bundle, args.output):
        raise OutputPathError(f"--output: {args.output} is the bundle itself; name a new .npz file")
    if ".ckpt" in os.path.basename(args.bundle) and not args.bundle.endswith(".mag"):  # NAME.ckpt[.index|.data-*]
        from live.models.vae import save_vae
        from live.models.vae_import import load_vae_checkpoint

        vae = load_vae_checkpoint(args.bundle)
        save_vae(vae, args.output)
        c = vae.config
        print(f"{args.bundle}: MusicVAE, encoder {c.encoder_sizes} each way, decoder {c.decoder_sizes}, z {c.z_size} -> {args.output}")
        return 0
    model = load_mag(args.bundle)
    save(model, args.output)
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


def _cmd_models(args: argparse.Namespace) -> int:
    """List the bundled models: name, configuration, size, what each was trained on."""
    from live.models.bundled import DEFAULT_FOR_MODE, bundled_models

    models = bundled_models()
    if not models:
        print("no bundled models installed")
        return 0
    for m in models:
        modes = ", ".join(mode for mode, name in DEFAULT_FOR_MODE.items() if name == m.name)
        default = f"  [default for {modes}]" if modes else ""
        default += "  [MusicVAE: magenta-live generate --interpolate/--sample]" if m.kind == "vae" else ""
        print(f"{m.name:<12} {m.config_id:<24} {m.size_bytes / 1e6:5.2f} MB  {m.trained_on}{default}")
    return 0


def _cmd_panic(args: argparse.Namespace) -> int:
    """All Sound Off and All Notes Off on all 16 channels of each ``--output-port``: what a
    daemon killed with SIGKILL could not send."""
    import time

    from live.midi_io.ledger import silencing_messages
    from live.midi_io.names import CLIENT_NAME
    from live.midi_io.ports import MidiOutput

    if not args.output_port:
        raise SettingError("panic: name the synth's port: magenta-live panic --output-port NAME (see magenta-live ports)")
    for query in args.output_port:
        with MidiOutput(query, backend=args.backend or "auto", client_name=f"{CLIENT_NAME}-panic") as out:
            for msg in silencing_messages():
                out.send(msg)
            time.sleep(0.1)  # a driver sends on its next cycle: let it before the port closes
            print(f"panic: All Sound Off and All Notes Off on 16 channels of {out.name}")
    return 0


def _cmd_ports(args: argparse.Namespace) -> int:
    """List the MIDI inputs and outputs of the chosen backend."""
    from live.midi_io.names import list_ports_text

    print(list_ports_text(args.backend or "auto"))
    return 0


def _add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    # Defaults are None so that a --config file can set them; live.config fills the rest.
    g = parser.add_argument_group("ports and clock")
    g.add_argument("--backend", choices=list(BACKEND_CHOICES),
                   help="MIDI backend (default auto: the platform's own, or JACK when only a JACK server runs)")
    g.add_argument("--list-ports", action="store_true", help="list MIDI inputs and outputs, then exit")
    g.add_argument("--input-port", action="append", metavar="NAME",
                   help="listen to this existing port (exact name, unique part of a name, or index; may repeat); "
                        "default: a virtual port \"magenta-live in\"")
    g.add_argument("--output-port", action="append", metavar="NAME",
                   help="play to this existing port (may repeat); default: a virtual port \"magenta-live out\"")
    g.add_argument("--input-channel", action="append", type=N["input_channel"].argtype, metavar="1-16",
                   help="only the notes on these channels reach the models (may repeat); default: all")
    g.add_argument("--passthrough", action="store_true", default=None, help="forward the player's notes to the outputs")
    g.add_argument("--clock", choices=["internal", "midi", "link"],
                   help="internal (default): the daemon keeps time at --bpm; midi: follow MIDI clock from --clock-port; "
                        "link: join an Ableton Link session (tempo, phase, start/stop; needs magenta-live[link])")
    g.add_argument("--clock-port", metavar="NAME", help="the port MIDI clock comes from (with --clock midi)")
    g.add_argument("--clock-out", metavar="NAME", help="send MIDI clock (0xF8, Start, Stop) to this port")
    g.add_argument("--bpm", type=N["bpm"].argtype, help="tempo of the internal clock in beats per minute (default 120)")
    g.add_argument("--max-note-seconds", type=N["max_note_seconds"].argtype, help="longest a note may sound, seconds (default 8)")
    g.add_argument("--realtime-priority", type=N["realtime_priority"].argtype, metavar="1-99",
                   help="ask for SCHED_FIFO at this priority for the clock and output threads (needs an rtprio "
                        "limit; with a realtime JACK server this keeps scheduling error under 0.1 ms under load)")

    g = parser.add_argument_group("the agent (or every agent of a --config file with [[agent]] tables)")
    g.add_argument("--mode", choices=MODES,
                   help="call-response (default): answer each phrase; continue: play on from the player's phrase; "
                        "improv: melody over chords; harmonize: voices under the player's melody; drums: a kit "
                        "part on channel 10; duet: expressive piano alongside the player; vary: a MusicVAE's "
                        "variations of each phrase; morph: a MusicVAE walking from the last phrase to the latest")
    g.add_argument("--model", metavar="NAME|PATH",
                   help="a bundled model (see `magenta-live models`) or a model file (.npz) or Magenta bundle "
                        "(.mag); default: the mode's bundled model")
    g.add_argument("--output-channel", type=N["output_channel"].argtype, metavar="1-16",
                   help="the channel the agent plays on (default 1; drums 10)")
    g.add_argument("--temperature", type=N["temperature"].argtype, help="sampling temperature 0.1-2.0 (default 1.0)")
    g.add_argument("--density", type=N["density"].argtype, help="0 sparse .. 1 busy (default 0.5: as the model plays)")
    g.add_argument("--key", metavar="C|Am|auto",
                   help="the player's key (F#, Bb, C#m...); melody and improv models hear the player moved into "
                        "their key and answer back in it; default auto: found from what the player plays")
    g.add_argument("--scale-lock", type=N["scale_lock"].argtype, metavar="0-1",
                   help="0 (default): the model picks any pitch; 1: only pitches of the key (and in improv the "
                        "chord's tones); between: out-of-key pitches less likely")
    g.add_argument("--top-p", type=N["top_p"].argtype, metavar="0.05-1",
                   help="nucleus sampling: draw only among the likeliest choices that add up to this "
                        "probability (default 1: all)")
    g.add_argument("--strays", type=N["strays"].argtype, metavar="0-1",
                   help="vary: how far an answer strays from the phrase: 0 the phrase re-voiced, 1 a free sample (default 0.5)")
    g.add_argument("--morph-steps", type=N["morph_steps"].argtype, metavar="1-16",
                   help="morph: two-bar phrases the answer takes from the last phrase to the latest (default 4)")
    g.add_argument("--silence", metavar="STEPS|Nbeat",
                   help="call-response: silence that ends a call, in 16th steps (4) or beats (1beat; the default)")
    g.add_argument("--response-quantize", choices=["step", "beat", "bar"],
                   help="call-response: the answer starts on the next step, beat (default) or bar")
    g.add_argument("--response-bars", type=N["response_bars"].argtype, metavar="BARS",
                   help="call-response: answer length in bars (default: as long as the call)")
    g.add_argument("--loop", action="store_true", default=None, help="call-response: repeat the last answer")
    g.add_argument("--mutate", action="store_true", default=None, help="call-response: answer the last answer")
    g.add_argument("--backing-chords", metavar="\"C G Am F\"",
                   help="improv: chords to loop (default: chords recognized from the notes the player holds)")
    g.add_argument("--steps-per-chord", type=N["steps_per_chord"].argtype, metavar="STEPS", help="improv: 16th steps per backing chord (default 16)")
    g.add_argument("--chord-channel", type=N["chord_channel"].argtype, metavar="1-16", help="improv: recognize chords from this channel only")
    g.add_argument("--chord-below", type=N["chord_below"].argtype, metavar="PITCH", help="improv: recognize chords from notes below this MIDI pitch only")
    g.add_argument("--pattern-file", metavar="FILE.mid", help="drums: prime the drummer with this MIDI file's drum part")

    g = parser.add_argument_group("session")
    g.add_argument("--config", metavar="FILE.toml",
                   help="options, [[agent]] tables and the [controls] CC map from a TOML file; the command line wins")
    g.add_argument("--record", metavar="FILE.mid", help="record the session (player and each agent) to a MIDI file")
    g.add_argument("--seed", type=N["seed"].argtype, help="seed the sampling: the same seed and input give the same notes")
    g.add_argument("--learn", action="store_true", default=None,
                   help="MIDI learn: move a control, then pick the parameter it steers; saved to --config's file")
    g.add_argument("--no-ui", action="store_true", default=None, help="run headless (no terminal panel)")
    g.add_argument("--no-cache", action="store_true",
                   help="convert a .mag bundle afresh (with TensorFlow) instead of using its cached conversion")
    g.add_argument("--input-file", metavar="IN.mid", help="offline: play this MIDI file to the agents instead of a port")
    g.add_argument("--output-file", metavar="OUT.mid", help="offline: write what everyone played here (with --input-file)")
    g.add_argument("--tail-bars", type=N["tail_bars"].argtype, metavar="BARS",
                   help="offline: bars to keep playing after the input ends, for modes that never stop (default 8)")


AGENT_OPTIONS = (
    "mode", "model", "output_channel", "temperature", "density", "key", "scale_lock", "top_p", "strays", "morph_steps",
    "silence", "response_quantize", "response_bars", "loop", "mutate", "backing_chords", "steps_per_chord", "chord_channel",
    "chord_below", "pattern_file", "input_channel",
)
"""The agent's options: each is the TOML key of the same name (``--output-channel``: ``output_channel``)."""
DAEMON_OPTIONS = (
    "backend", "input_port", "output_port", "passthrough", "clock", "clock_port", "clock_out", "bpm",
    "max_note_seconds", "realtime_priority", "record", "seed", "learn", "no_ui", "input_file", "output_file", "tail_bars",
)


def settings_from(args: argparse.Namespace):
    """(daemon settings, agent specs, CC map) from --config and the command line (which wins)."""
    from live.config import merge, read_toml

    file_settings = read_toml(args.config) if args.config else {}
    cli = {name: getattr(args, name) for name in DAEMON_OPTIONS}
    cli.update({name: getattr(args, name) for name in AGENT_OPTIONS})
    return merge(file_settings, cli)


def _run_offline(settings: dict, specs: list) -> int:
    from live.offline import DEFAULT_TAIL_BARS, run_offline

    if not settings.get("output_file"):
        raise ValueError("--input-file needs --output-file OUT.mid")
    check_writable(settings["output_file"], "--output-file")
    if same_file(settings["input_file"], settings["output_file"]):
        raise OutputPathError(f"--output-file: {settings['output_file']} is the input file; name a new file")
    recording = run_offline(
        settings["input_file"], settings["output_file"], specs, seed=settings.get("seed", 0),
        bpm=settings.get("bpm"), tail_bars=DEFAULT_TAIL_BARS if settings.get("tail_bars") is None else settings["tail_bars"],
    )
    counts = ", ".join(f"{name}: {sum(1 for _, _, m in ev if m.type == 'note_on' and m.velocity)} notes"
                       for name, ev in recording.tracks.items())
    print(f"magenta-live: wrote {settings['output_file']} ({counts})")
    return 0


def _run_daemon(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM, SIGHUP (its terminal closed) or Ctrl-C (or q in the panel);
    every sounding note gets its note-off on the way out and the recording is written."""
    import faulthandler
    import signal

    from live.daemon import SWITCH_INTERVAL_SECONDS, Daemon, DaemonOptions
    from live.midi_io.names import printable

    settings, specs, controls = settings_from(args)
    if settings.get("input_file"):
        return _run_offline(settings, specs)
    options = DaemonOptions(
        backend=settings.get("backend") or "auto",
        input_ports=list(settings.get("input_port") or []),
        output_ports=list(settings.get("output_port") or []),
        input_channels=args.input_channel,
        passthrough=bool(settings.get("passthrough")),
        clock=settings.get("clock") or "internal",
        clock_port=settings.get("clock_port"),
        clock_out=settings.get("clock_out"),
        bpm=float(settings.get("bpm") or 120.0),
        max_note_seconds=float(settings.get("max_note_seconds") or 8.0),
        realtime_priority=settings.get("realtime_priority"),
        agents=specs,
        controls=controls,
        record=settings.get("record"),
        seed=settings.get("seed"),
        learn=bool(settings.get("learn")),
        learn_file=args.config or ("magenta-live.toml" if settings.get("learn") else None),
        exit_on_hang=True,
        take_library_output=True,
    )
    daemon = Daemon(options)
    # The threads that take input (rtmidi's driver thread with its callback; on JACK the input
    # pump) and the output scheduler need the GIL for microseconds at a time; with Python's
    # default 5 ms switch interval a busy daemon thread would hold them up for that long. The
    # daemon owns its process, so it asks for a short interval here (the library leaves
    # process-wide settings alone).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    def on_signal(signum: int, frame: object) -> None:
        daemon.stop_from_signal(signum)

    stopping = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in stopping}
    dumps = None
    if hasattr(signal, "SIGUSR1"):
        # `kill -USR1 PID` prints every thread's stack to stderr, even when one holds the GIL
        # inside a MIDI driver call: what a daemon that will not stop is waiting for. The
        # terminal's stderr is kept on a descriptor of its own: while the daemon runs, file
        # descriptor 2 belongs to the MIDI libraries' output (live.midi_io.stderr).
        try:
            dumps = os.fdopen(os.dup(2), "w")
            faulthandler.register(signal.SIGUSR1, file=dumps, all_threads=True)
        except (ValueError, OSError, AttributeError):  # no real stderr (embedded, captured): no dump
            pass
    use_panel = not settings.get("no_ui") and sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if use_panel:
            from live.ui.panel import run_panel

            try:
                run_panel(daemon, before_run=daemon.open)  # the panel is up while models load
            finally:
                daemon.close()
        else:
            with daemon:
                agents = daemon.session.agents if daemon.session is not None else []
                print(printable("magenta-live: listening on " + ", ".join(p.name for p in daemon.inputs)
                                + "; playing to " + ", ".join(p.name for p in daemon.outputs)
                                + "".join(f"; {a.name}: {a.spec.mode} with {a.model.config_id} on channel {a.channel + 1}"
                                          for a in agents)), flush=True)
                if options.learn:
                    _learn_from_stdin(daemon)
                daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if hasattr(signal, "SIGUSR1"):
            faulthandler.unregister(signal.SIGUSR1)
        if dumps is not None:
            dumps.close()
    if daemon.recorder.failed:
        print(f"magenta-live: {daemon.recorder.failed}", file=sys.stderr)
        return 1
    return 0


def _learn_from_stdin(daemon) -> None:
    """Headless MIDI learn: after a control moves, a line on stdin names its parameter."""
    import threading

    from live.protocol import PARAMETERS
    from live.protocol import Command

    print("MIDI learn: move a control, then type the parameter it steers: " + ", ".join(PARAMETERS), flush=True)

    def read() -> None:
        for line in sys.stdin:
            name = line.strip()
            if name in PARAMETERS:
                daemon.send_command(Command("learn", value=name))
            elif name:
                print(f"not a parameter: {name!r}; parameters: {', '.join(PARAMETERS)}", flush=True)

    threading.Thread(target=read, name="magenta-live learn", daemon=True).start()


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="magenta-live",
        description="A real-time MIDI co-performer driven by Magenta-family RNN models.",
    )
    parser.add_argument("--version", action="version", version=f"magenta-live {__version__}")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                        help="how much the daemon logs to stderr (default warning)")
    _add_daemon_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ports", help="list MIDI inputs and outputs")
    p.add_argument("--backend", default=argparse.SUPPRESS, choices=list(BACKEND_CHOICES))
    p.set_defaults(func=_cmd_ports)

    p = sub.add_parser("panic", help="end every note on a synth: All Sound Off and All Notes Off on all 16 channels")
    p.add_argument("--output-port", action="append", metavar="NAME", default=argparse.SUPPRESS,
                   help="the synth's port (as for the daemon; may repeat)")
    p.add_argument("--backend", default=argparse.SUPPRESS, choices=list(BACKEND_CHOICES))
    p.set_defaults(func=_cmd_panic)

    p = sub.add_parser("import", help="convert a Magenta .mag bundle (or MusicVAE checkpoint) to a magenta-live model file (.npz)")
    p.add_argument("bundle", help="path to the .mag bundle, or a MusicVAE checkpoint (NAME.ckpt, its .index or data file)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("configs", help="list the Magenta configurations the engine knows")
    p.set_defaults(func=_cmd_configs)

    p = sub.add_parser("models", help="list the bundled models (name, configuration, size, training data)")
    p.set_defaults(func=_cmd_models)

    from live import generate

    p = sub.add_parser("generate", help="generate MIDI files offline, like Magenta's *_generate scripts")
    generate.add_arguments(p)
    p.set_defaults(func=generate.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a refused argument (its one line is printed)
        return int(done.code or 0)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "no_cache", False):
        import live.models

        live.models.CACHE_BUNDLES = False
    if not getattr(args, "func", None):
        if args.list_ports:
            args.backend = args.backend or "auto"
            args.func = _cmd_ports
        else:
            args.func = _run_daemon
    try:
        return int(args.func(args) or 0)
    except FileNotFoundError as err:
        print(f"magenta-live: {err}", file=sys.stderr)
        return 1
    except (LiveError, ValueError) as err:
        print(f"magenta-live: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C in offline mode or while a model loads: nothing half-written stays
        print("magenta-live: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
