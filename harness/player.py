"""A player's keyboard and a synth in a process of their own: ``python -m harness.player NAME``.

Opens "NAME-keys:out" and "NAME-synth:in" (the daemon's own port classes, on our JACK binding,
which opens a client again when libjack kept a client that left during its open: python-rtmidi's
libjack does not, and a server restart is when programs come and go at once), prints "ready",
then answers one command per line on stdin:

    send B1 B2 ...   send that MIDI message from the keys            -> "ok"
    heard            what the synth received since the last "heard"  -> a JSON list of byte lists
    quit             close both clients and exit                     -> "bye"

``harness.jackd.RemotePlayer`` drives it. A test that restarts a JACK server keeps the player and
the synth out of the daemon's process, as another program's would be: libjack keeps one state
per process, and what a server's death leaves in that state is each process's own business.
"""

from __future__ import annotations

import json
import sys
import time

import mido

from harness.jackd import NamedJackClient
from live.midi_io.ports import MidiOutput


OPEN_TRIES = 40  # a server that has just started may refuse a client for a while (seen: seconds, in full test runs)


def _keys(client: str) -> MidiOutput:
    return MidiOutput(None, backend="jack", client_name=client, port_name="out")


def _open(client: str, make):
    for attempt in range(OPEN_TRIES):
        try:
            return make(client)
        except Exception as err:  # noqa: BLE001 - our binding raises BackendError (a MIDI error), anything else is retried too
            if attempt == OPEN_TRIES - 1:
                raise
            print(f"harness.player: the server refused {client!r} ({err}); asking again", file=sys.stderr, flush=True)
            time.sleep(0.5)
    raise AssertionError("unreachable")


def main(name: str) -> None:
    keys = _open(f"{name}-keys", _keys)
    synth = _open(f"{name}-synth", lambda client: NamedJackClient(client, "in"))
    print("ready", flush=True)
    seen = 0
    for line in sys.stdin:
        command, *args = line.split()
        if command == "send":
            keys.send(mido.Message.from_bytes([int(b) for b in args]))
            print("ok", flush=True)
        elif command == "heard":
            heard = synth.messages()
            print(json.dumps([m.bytes() for m in heard[seen:]]), flush=True)
            seen = len(heard)
        elif command == "quit":
            break
    keys.close()
    synth.close()
    print("bye", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
