"""The note ledger: every note-on that goes out gets its note-off.

Every message for an output goes through :meth:`NoteLedger.send`. The ledger remembers which
notes sound, per (channel, pitch), with the ``time.perf_counter`` second they started and an
optional owner (the scheduler passes the tag of the agent or answer that played it):

- A note-on for a pitch that already sounds on that channel is preceded by a note-off for it,
  so the synthesizer never holds two voices that a single note-off would leave half released.
- A note-off, or a note-on with velocity 0, releases the note.
- A note-off for a note that does not sound is passed through unchanged and counted
  (``stray_note_offs``): a note-off is always safe to send, and it may end a note the ledger
  never saw (one held before the daemon started, or one already released by the length guard).
- Every other message (control changes, clock, sysex...) passes through untouched.
- :meth:`release_all` sends a note-off for every sounding note, then All Notes Off (CC 123) on
  every channel used so far. Stop, panic, exit, Ctrl-C, SIGTERM and every error path call it.
- :meth:`expire` is the maximum note length guard: it releases notes that have sounded longer
  than ``max_note_seconds``.

Thread safety: one re-entrant lock guards the state and is held while sending, so messages
from the scheduler thread and the main thread never interleave half-way. ``release_all`` may be
called from a signal handler: the handler runs in the main thread, so if it interrupts a
``send`` of that same thread the re-entrant lock lets it in rather than deadlocking, and the
interrupted ``send`` notices afterwards (a release epoch changed) and silences the note it was
sending. Called from the handler while another thread holds the lock, it simply waits for that
one message to finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import mido

from live import messages

log = logging.getLogger(__name__)

ALL_NOTES_OFF = 123  # the channel-mode controller that silences every note of a channel
ALL_SOUND_OFF = 120  # the channel-mode controller that silences a channel at once, release tails too
RELEASE_VELOCITY = 64  # the velocity MIDI asks for when a sender has no release velocity

Key = tuple[int, int]  # (channel 0-15, pitch 0-127)


def silencing_messages(channels: range | list[int] = range(16)) -> list[mido.Message]:
    """All Sound Off and All Notes Off on each of ``channels`` (0-15): what ends everything a
    synth sounds without knowing which notes (``magenta-live panic``, and a daemon's start)."""
    return [
        mido.Message("control_change", channel=c, control=cc, value=0) for c in channels for cc in (ALL_SOUND_OFF, ALL_NOTES_OFF)
    ]


@dataclass
class Sounding:
    """One sounding note: when it started (perf_counter seconds) and who played it."""

    started: float
    owner: Hashable | None


def is_note_on(msg: mido.Message) -> bool:
    """A note-on with velocity above 0 (velocity 0 means note-off)."""
    return msg.type == "note_on" and msg.velocity > 0


def is_note_off(msg: mido.Message) -> bool:
    """A note-off, or a note-on with velocity 0."""
    return msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0)


def note_off(channel: int, note: int) -> mido.Message:
    """The note-off the ledger sends for a note it releases itself."""
    return messages.note_off(channel, note, RELEASE_VELOCITY)


class NoteLedger:
    """Tracks sounding notes of one output and guarantees each of them a note-off.

    ``send`` is the output's own send (for example ``MidiOutput.send``); it takes a
    ``mido.Message``. ``max_note_seconds`` (seconds, or None for no limit) is the longest a note
    may sound before :meth:`expire` releases it. ``now`` is the clock, in seconds
    (``time.perf_counter``; replace it only in tests).

    Counters (read them any time; they only grow): ``notes_on`` (note-ons sent),
    ``notes_off`` (note-offs sent, the ledger's own included), ``retriggers`` (note-ons that
    needed a note-off first), ``expired`` (notes ended by the length guard), ``stray_note_offs``
    (note-offs for notes that did not sound), ``send_errors`` (sends that raised).
    """

    def __init__(
        self,
        send: Callable[[mido.Message], None],
        max_note_seconds: float | None = None,
        *,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_note_seconds is not None and not max_note_seconds > 0:
            raise ValueError(f"max_note_seconds must be positive seconds or None, not {max_note_seconds!r}")
        self._out = send
        self.max_note_seconds = max_note_seconds
        self._now = now
        self._lock = threading.RLock()
        self._sounding: dict[Key, Sounding] = {}
        self._channels: set[int] = set()  # every channel a channel message went out on
        self._struck: set[Key] = set()  # every (channel, pitch) a note-on went out for, ever (at most 2048)
        self._epoch = 0  # bumped by every release_all
        self._dirty = False  # something went out since the last release_all
        self.notes_on = 0
        self.notes_off = 0
        self.retriggers = 0
        self.expired = 0
        self.stray_note_offs = 0
        self.send_errors = 0
        self.last_error: BaseException | None = None
        # Called as observer(message, owner) after every message that went out (the recorder).
        self.observer: Callable[[mido.Message, Hashable | None], None] | None = None

    # -- sending ---------------------------------------------------------------------------

    def send(self, msg: mido.Message, owner: Hashable | None = None) -> None:
        """Send ``msg`` to the output, keeping the ledger up to date.

        ``owner`` (any hashable, such as an answer's tag) is remembered with a note-on so that
        :meth:`sounding` and :meth:`release` can find the notes of one player. An exception
        from the output's send propagates (after it is counted); a note-on whose send failed is
        not counted as sounding.
        """
        with self._lock:
            epoch = self._epoch
            channel = getattr(msg, "channel", None)
            if channel is not None:  # clock and system messages don't make a release necessary
                self._channels.add(channel)
                self._dirty = True
            if msg.type in ("note_on", "note_off"):
                key = (msg.channel, msg.note)
                if is_note_on(msg):
                    if key in self._sounding:
                        self.retriggers += 1
                        self._emit(note_off(*key), self._sounding[key].owner)
                        self.notes_off += 1
                    self._sounding[key] = Sounding(self._now(), owner)
                    self._struck.add(key)
                    try:
                        self._emit(msg, owner)
                    except BaseException:
                        self._sounding.pop(key, None)
                        raise
                    self.notes_on += 1
                    if self._epoch != epoch:
                        # release_all ran while we were sending (a signal handler of this very
                        # thread): it may have missed this note. Silence it.
                        self._sounding.pop(key, None)
                        self._emit(note_off(*key), owner)
                        self.notes_off += 1
                    return
                was = self._sounding.pop(key, None)
                if was is None:
                    self.stray_note_offs += 1
                self._emit(msg, owner if was is None else was.owner)
                self.notes_off += 1
                return
            self._emit(msg, owner)

    def _emit(self, msg: mido.Message, owner: Hashable | None = None) -> None:
        try:
            self._out(msg)
        except BaseException as err:
            self.send_errors += 1
            self.last_error = err
            raise
        if self.observer is not None:
            try:
                self.observer(msg, owner)
            except Exception:  # noqa: BLE001 - a recorder's bug must not silence the output
                log.exception("the ledger's observer failed")

    def _emit_quietly(self, msg: mido.Message, owner: Hashable | None = None) -> bool:
        """Send, and on failure count and log instead of raising (for release paths)."""
        try:
            self._emit(msg, owner)
        except Exception as err:  # noqa: BLE001 - a release must reach every note
            log.warning("could not send %s while releasing notes: %s", msg, err)
            return False
        return True

    # -- releasing --------------------------------------------------------------------------

    def release_all(self) -> list[mido.Message]:
        """Note-off for every sounding note, then All Notes Off on every channel used so far.

        Returns the messages it sent. Idempotent: when no channel message went out since the
        last call it sends nothing. It never raises for a failing output (each failure is counted in
        ``send_errors`` and logged, and the remaining messages are still tried). Safe to call
        from a signal handler (see the module docstring).
        """
        with self._lock:
            self._epoch += 1
            if not self._dirty and not self._sounding:
                return []
            self._dirty = False
            notes = sorted(self._sounding.items())
            self._sounding.clear()
            sent = []
            for key, sounding in notes:
                msg = note_off(*key)
                if self._emit_quietly(msg, sounding.owner):
                    sent.append(msg)
                    self.notes_off += 1
            for channel in sorted(self._channels):
                msg = mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF, value=0)
                if self._emit_quietly(msg):
                    sent.append(msg)
            return sent

    def panic(self) -> list[mido.Message]:
        """The panic control: a note-off for every note ever struck through this ledger, whether
        or not it is thought to sound (a synth may have missed one), then All Sound Off and All
        Notes Off on all 16 channels. Returns what it sent; never raises for a failing output."""
        with self._lock:
            self._epoch += 1
            self._dirty = False
            keys = sorted(self._struck | set(self._sounding))
            owners = {k: s.owner for k, s in self._sounding.items()}
            self._sounding.clear()
            sent = []
            for key in keys:
                msg = note_off(*key)
                if self._emit_quietly(msg, owners.get(key)):
                    sent.append(msg)
                    self.notes_off += 1
            for msg in silencing_messages():
                if self._emit_quietly(msg):
                    sent.append(msg)
            return sent

    def release(self, owner: Hashable | None = None, keys: list[Key] | None = None) -> list[mido.Message]:
        """Note-offs for sounding notes of ``owner`` and/or among ``keys`` ((channel, pitch) pairs).

        With both given, only the notes in ``keys`` that ``owner`` still owns. With neither,
        nothing (use :meth:`release_all` to release everything). Returns the note-offs sent;
        never raises for a failing output.
        """
        with self._lock:
            if owner is None and keys is None:
                return []
            wanted = self._sounding.keys() if keys is None else keys
            chosen = sorted(
                k for k in set(wanted) if k in self._sounding and (owner is None or self._sounding[k].owner == owner)
            )
            sent = []
            for key in chosen:
                was = self._sounding.pop(key)
                msg = note_off(*key)
                if self._emit_quietly(msg, was.owner):
                    sent.append(msg)
                    self.notes_off += 1
            return sent

    def expire(self, now: float | None = None) -> list[mido.Message]:
        """The maximum note length guard: release notes older than ``max_note_seconds``.

        ``now`` is perf_counter seconds (default: the clock now). Returns the note-offs sent;
        does nothing without a ``max_note_seconds``. Never raises for a failing output.
        """
        if self.max_note_seconds is None or not self._sounding:  # nothing sounds: nothing to do (no lock taken)
            return []
        if now is None:
            now = self._now()
        limit = now - self.max_note_seconds
        with self._lock:
            old = [key for key, s in self._sounding.items() if s.started <= limit]
            sent = self.release(keys=old)
            self.expired += len(sent)
            if sent:
                log.info("maximum note length (%.3g s): released %d note(s)", self.max_note_seconds, len(sent))
            return sent

    def next_expiry(self) -> float | None:
        """When (perf_counter seconds) the oldest sounding note reaches the length limit.

        None when there is no limit or no note sounds. Takes no lock (it reads a snapshot), so
        the scheduler may ask while holding its own lock.
        """
        if self.max_note_seconds is None:
            return None
        for _ in range(3):
            try:
                starts = [s.started for s in list(self._sounding.values())]
                break
            except RuntimeError:  # the dict changed size while being copied
                continue
        else:
            return self._now()  # can't tell: have the guard look now
        return min(starts) + self.max_note_seconds if starts else None

    # -- looking -----------------------------------------------------------------------------

    def sounding(self, owner: Hashable | None = None) -> list[Key]:
        """Sounding notes as sorted (channel, pitch) pairs; only ``owner``'s if one is given."""
        with self._lock:
            return sorted(k for k, s in self._sounding.items() if owner is None or s.owner == owner)

    def owner_of(self, channel: int, note: int) -> Hashable | None:
        """The owner of a sounding note (None if it doesn't sound or has no owner)."""
        with self._lock:
            entry = self._sounding.get((channel, note))
            return None if entry is None else entry.owner

    def is_sounding(self, channel: int, note: int) -> bool:
        with self._lock:
            return (channel, note) in self._sounding

    @property
    def sounding_count(self) -> int:
        """How many notes sound now."""
        return len(self._sounding)

    @property
    def channels_used(self) -> list[int]:
        """Channels (0-15) that a channel message went out on so far."""
        with self._lock:
            return sorted(self._channels)
