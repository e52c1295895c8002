"""Faults a gig throws at the daemon, measured: a JACK server that restarts, a flood past the
MIDI driver's queue, a player's port that vanishes with keys held, and fuzzed input.

    .venv/bin/python -m benchmarks.faults              # 10 restarts, 12,000-message flood, 3,000 fuzz examples per property
    .venv/bin/python -m benchmarks.faults --quick      # 2 restarts, a smaller flood and campaign
    .venv/bin/python -m benchmarks.faults --update benchmarks/RESULTS.md   # replace this section only

A Daemon runs in a process of its own (one for the restarts, one for the flood) on a private
dummy-driver JACK server (``harness.jackd``), with a
player's port it listens to and a synth's port it plays to (passthrough on, so every player's
note reaches the synth through the daemon's note ledger). Hanging notes are counted at the
synth: note-ons minus note-offs per (channel, pitch) at the end, after every fault. The tests
check the behaviour (tests/test_stage_jack.py); this measures it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter

import mido

from benchmarks import section_main

HEADING = "## Faults"


def _hanging(heard: list[mido.Message]) -> int:
    """Notes left sounding at the synth: note-ons without a later note-off (or All Notes Off)."""
    sounding: Counter = Counter()
    for m in heard:
        if m.type == "note_on" and m.velocity:
            sounding[(m.channel, m.note)] = 1
        elif m.type in ("note_on", "note_off"):
            sounding.pop((m.channel, m.note), None)
        elif m.type == "control_change" and m.control in (120, 123):
            for key in [k for k in sounding if k[0] == m.channel]:
                sounding.pop(key)
    return sum(sounding.values())


def _restarts(count: int, log) -> dict:
    from harness.jackd import RemotePlayer, start_jackd
    from live.daemon import Daemon, DaemonOptions

    server = start_jackd(period=256)
    name = server.name
    player = RemotePlayer(name)  # the keys and the synth: another program, in a process of its own
    daemon = Daemon(DaemonOptions(backend="jack", input_ports=[player.keys_port], output_ports=[player.synth_port, None],  # type: ignore[list-item]
                                  passthrough=True, agents=[], client_name=f"{name}-stage"))
    daemon.open()
    back_s, player_s, hanging, sounding_after_down, failed = [], [], 0, 0, 0
    try:
        for i in range(count):
            time.sleep(0.1)
            player.send(mido.Message("note_on", note=60 + i % 12, velocity=90))  # held through the fault
            daemon.run(0.3)
            server.process.kill() if i % 2 else server.process.terminate()
            server.process.wait(30)
            player.abandon()  # its clients died with the server (and what the synth heard with them)
            deadline = time.perf_counter() + 5
            while time.perf_counter() < deadline and any(p.up for p in (*daemon.inputs, *daemon.outputs)):
                daemon.run(0.05)
            daemon.run(0.2)
            sounding_after_down += sum(len(s.ledger.sounding()) for s in daemon.schedulers)
            server = server.restart()  # the daemon here must never see another server meanwhile
            restarted = time.perf_counter()
            try:
                player = RemotePlayer(name)
            except RuntimeError as err:
                raise RuntimeError(f"{err}; the restarted server's log: {server.log_since(0)[-3000:]}") from err
            player_s.append(time.perf_counter() - restarted)
            while time.perf_counter() - restarted < 20 and not all(p.up for p in (*daemon.inputs, *daemon.outputs)):
                daemon.run(0.02)
            if all(p.up for p in (*daemon.inputs, *daemon.outputs)):
                back_s.append(time.perf_counter() - restarted)
            else:
                failed += 1
                print(f"restart {i + 1}: not back after 20 s: {[p.name for p in (*daemon.inputs, *daemon.outputs) if not p.up]}",
                      file=sys.stderr, flush=True)
            daemon.run(0.5)
            player.send(mido.Message("note_off", note=60 + i % 12))  # the player lets go on the new server
            daemon.run(0.3)
            hanging += _hanging(player.messages())
            log(f"restart {i + 1}/{count}: {'SIGKILL' if i % 2 else 'SIGTERM'}, ports back and connected "
                f"{back_s[-1] if back_s else float('nan'):.2f} s after the server ({player_s[-1]:.2f} s: the player's ports)")
    finally:
        daemon.close()
        player.close()
        server.stop()
    from live.midi_io.jack import _jackmidi

    reopened = _jackmidi.last_repair()[0] if _jackmidi is not None else 0
    return {"count": count, "back": back_s, "player": player_s, "failed": failed, "hanging": hanging,
            "sounding_after_down": sounding_after_down, "reopened": reopened}


def _flood(total: int, log) -> dict:
    from harness.jackd import start_jackd
    from live.daemon import Daemon, DaemonOptions
    from harness.jackd import NamedJackClient

    with start_jackd() as server:
        keys = NamedJackClient(f"{server.name}-flood", "out")
        daemon = Daemon(DaemonOptions(backend="jack", input_ports=[keys.port_name], agents=[], client_name=f"{server.name}-d",
                                      take_library_output=True))
        try:
            with daemon:
                time.sleep(0.1)
                sent = keys.flood(-(-total // 1000))
                time.sleep(0.3)
                daemon.run(1.0)
                result = {"sent": sent, "received": daemon.counters.notes_in, "driver": daemon.library_output.dropped,
                          "ours": sum(p.dropped for p in daemon.inputs)}
        finally:
            keys.close()
    log(f"flood: {result}")
    return result


def _fuzz(examples: int, log) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz_settings.py", "tests/test_fuzz_midi_files.py"],
        capture_output=True, text=True, env={**os.environ, "MAGENTA_LIVE_FUZZ_EXAMPLES": str(examples)}, timeout=3600,
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-200:]
    log(f"fuzz: {tail}")
    return {"examples": examples, "ok": done.returncode == 0, "summary": tail, "seconds": time.perf_counter() - start,
            "tracebacks": done.stdout.count("Traceback") + done.stderr.count("Traceback")}


def _isolated(part: str, arg: int, log) -> dict:
    """``part(arg)`` (``_restarts`` or ``_flood``) in a fresh interpreter: each serves a JACK
    server of its own, and one process serves one server (libjack keeps one state per process).
    Its log lines come back through ``log``, its stderr (libjack's and the daemon's warnings) to
    ours; a crash's stack is printed (faulthandler)."""
    code = (f"import json, logging; from benchmarks import faults; "
            f"logging.basicConfig(level=logging.WARNING, format='%(relativeCreated)7.0f ms %(threadName)s: %(message)s'); "
            f"print('RESULT ' + json.dumps(faults.{part}({arg}, lambda m: print('LOG ' + m, flush=True))))")
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True, timeout=1800,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.stderr.write(done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith("LOG "):
            log(line[4:])
        elif line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmarks.faults {part} failed (exit {done.returncode}); its stderr is above")


def run(quick: bool = False, log=print) -> str:
    restarts = _isolated("_restarts", 2 if quick else 10, log)
    flood = _isolated("_flood", 12000, log)
    fuzz = _fuzz(100 if quick else 3000, log)
    back = restarts["back"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lost = flood["sent"] - flood["received"]
    counted = flood["driver"] + flood["ours"]
    lines = [
        HEADING, "",
        f"`python -m benchmarks.faults{' --quick' if quick else ''}` on {when}; load average {load} at the end "
        "(the machine is shared). A Daemon in a process of its own on a private dummy-driver JACK server (-p 256), on our JACK "
        "binding; the player's port it listens to and the synth's port it plays to (passthrough) are in another process "
        "(`harness.player`) for the restarts, as another program's would be.", "",
        "| fault | measured | target |", "|---|---|---|",
        f"| JACK server restarted ({restarts['count']}x, SIGTERM and SIGKILL alternately, a key held each time) | "
        f"ports registered again and connections restored {statistics.median(back) if back else float('nan'):.2f} s median, "
        f"{max(back) if back else float('nan'):.2f} s max after the new server runs (the player's ports were there again "
        f"{statistics.median(restarts['player']):.2f} s median after it; ours retry a missing remote every 0.1 s for 2 s); "
        f"{restarts['failed']} never came back; "
        f"{restarts['reopened']} client open(s) done again because another program's client left during it "
        "(docs/MIDI.md) | back, every time |",
        f"| notes the ledger still held after the server stopped | {restarts['sounding_after_down']} | 0 |",
        f"| hanging notes at the synth once it is back, across the restarts | {restarts['hanging']} | 0 |",
        f"| flood of {flood['sent']:,} note messages past the input queues (ours: 4,096 messages) | received {flood['received']:,}, lost "
        f"{lost:,}, counted as dropped {counted:,} (by the MIDI driver {flood['driver']:,}, by ours {flood['ours']:,}); unaccounted {lost - counted:,} | "
        "lost = counted |",
        f"| fuzzing: command line, TOML file, MIDI files ({fuzz['examples']:,} examples per property, {fuzz['seconds']:.0f} s) | "
        f"{fuzz['summary']}; tracebacks {fuzz['tracebacks']} | 0 tracebacks |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return section_main(__doc__, HEADING, run, "2 restarts, a smaller flood and campaign", argv)


if __name__ == "__main__":
    raise SystemExit(main())
