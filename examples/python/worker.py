#!/usr/bin/env python3
"""A zfarm worker in Python, written from PROTOCOL.md (zfarm/1) alone.

It speaks protocol version 1 as a worker (PROTOCOL.md sections 2 to 9):
HELLO when it starts, a HEARTBEAT every second listing the tasks it holds,
one RESULT per task it runs (with started_us, elapsed_us and kind), BYE
when it leaves, handing back the tasks it did not run. It takes tasks by
push dispatch (PULL from the ventilator's tasks endpoint), by credit
dispatch (DEALER to the credit endpoint, granting CREDIT, reset on every new
connection), or both, whichever the ventilator of the moment uses. It
honours DONE (--exit-when-done), STOP (drops a cancelled job's tasks) and
task deadlines, and never stops for a bad frame.

Task kinds:
  echo      the output is the payload (as the zfarm worker's, 6.3)
  sleep     sleeps for the payload's decimal milliseconds (6.1)
  py-upper  the output is the UTF-8 payload in upper case; a payload that is
            not valid UTF-8 fails the task
Any other kind is answered with a failed RESULT (5.3, rule 4).

  worker.py --connect HOST                       # default ports 5557-5560
  worker.py --credit tcp://head:5560 --results tcp://head:5558 \\
            --control tcp://head:5559 --threads 4

SIGINT or SIGTERM once: finish the running tasks, hand back the queued ones,
say BYE and exit 0. Twice: leave at once, handing back the running ones too.
Exit status: 0 stopped or done; 1 a socket error; 2 bad usage; 3 too many
handlers ran on past their deadline (6.6): restart it.

Needs Python 3.9+, pyzmq and msgpack (Debian: python3-zmq python3-msgpack).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import enum
import logging
import os
import queue
import random
import signal
import socket
import sys
import threading
import time
from typing import Callable, Optional, Union

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger("worker.py")

# ---- protocol constants (PROTOCOL.md Appendix A) ------------------------------

VERSION = 1  # protocol version (3.2)
SOFTWARE_VERSION = "0.1.0-py"  # HELLO's `version`: this program's release


class Type(enum.IntEnum):
    """Type codes (section 5). A worker sends and receives these."""

    TASK = 3
    RESULT = 4
    HELLO = 5
    HEARTBEAT = 6
    BYE = 7
    DONE = 10
    STOP = 11
    BATCH = 15  # several messages in one frame, on tasks and credit (5.15)
    CREDIT = 12


MAX_TYPE = 14  # the highest type code of version 1 (3.2, rule 3)
MAX_NAME = 256  # bytes, for job, worker, kind, host, version (3.4)
MAX_LIST = 65_536  # elements of HEARTBEAT `running`, BYE `returned` (3.4)
MAX_ARRAY = 262_144  # elements of any array anywhere (3.4)
MAX_DEPTH = 4  # nested containers, the message's own array counting (3.4)
MAX_BATCH = 4096  # messages in one BATCH (5.15)
UINT32 = 2**32 - 1
UINT64 = 2**64 - 1
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024  # ZMQ_MAXMSGSIZE (3.4)

HEARTBEAT_INTERVAL = 1.0  # seconds (5.6)
POLL_INTERVAL_MS = 100
HUNG_GRACE = 1.0  # seconds past a deadline before a handler is abandoned (6.6)
MAX_PUSH_HELD = 10_000  # pushed tasks held at most (8.1, rule 2)
STOPPED_JOBS_KEPT = 64  # cancelled jobs remembered (9.4)
RESULTS_LINGER_MS = 2000  # lets the last RESULTs and BYE go out

# Names are byte strings on the wire that need not be valid UTF-8 (3.3, rule
# 2): decode and encode str with surrogateescape, so a job name is copied
# into the RESULT byte for byte whatever it holds.
STR_ERRORS = "surrogateescape"


def name_bytes(name: str) -> int:
    return len(name.encode("utf-8", STR_ERRORS))


def clip_name(name: str, limit: int = MAX_NAME) -> str:
    """`name` cut to at most `limit` bytes."""
    return name.encode("utf-8", STR_ERRORS)[:limit].decode("utf-8", "ignore")


# ---- encoding and decoding (section 3) ----------------------------------------


class Malformed(Exception):
    """A frame that is not a valid version 1 message (3.7): it is dropped."""


def encode(type_code: Type, *fields: object) -> bytes:
    """One message: [version, type, fields...]; bytes become msgpack bin, str
    msgpack str (3.3)."""
    return msgpack.packb(
        [VERSION, int(type_code), *fields], use_bin_type=True, unicode_errors=STR_ERRORS
    )


class _Map(list):
    """A msgpack map, as its (key, value) pairs: maps appear only in ignored
    trailing elements, and their keys may be anything, even unhashable."""


def _reject_ext(code: int, data: bytes) -> object:
    raise Malformed(f"ext value (type {code})")  # 3.3, rule 3


def _check_nesting(obj: object, depth: int, limit: int = MAX_DEPTH) -> None:
    if isinstance(obj, _Map):
        if depth > limit:
            raise Malformed(f"containers nested more than {limit} deep")
        for key, value in obj:
            _check_nesting(key, depth + 1, limit)
            _check_nesting(value, depth + 1, limit)
    elif isinstance(obj, list):
        if depth > limit:
            raise Malformed(f"containers nested more than {limit} deep")
        for item in obj:
            _check_nesting(item, depth + 1, limit)
    elif isinstance(obj, (msgpack.ExtType, msgpack.Timestamp)):
        raise Malformed("ext value")


def _unpack_value(frame: bytes) -> object:
    """The frame's one msgpack value, within the limits of 3.4, or Malformed."""
    limit = min(len(frame), MAX_ARRAY)
    try:
        return msgpack.unpackb(
            frame,
            raw=False,
            unicode_errors=STR_ERRORS,
            strict_map_key=False,
            object_pairs_hook=_Map,
            ext_hook=_reject_ext,
            max_array_len=limit,
            max_map_len=limit // 2,
            max_str_len=len(frame),
            max_bin_len=len(frame),
        )
    except Malformed:
        raise
    except Exception as e:  # any decoding error, bytes after the array (3.1, rule 2), ...
        raise Malformed(f"not one msgpack value: {e}") from None


def _check_message(msg: object) -> list:
    """One message's array with its version and type code checked."""
    if not isinstance(msg, list) or isinstance(msg, _Map):
        raise Malformed("not a msgpack array")
    if len(msg) < 2:
        raise Malformed("no type code")
    if type(msg[0]) is not int or msg[0] != VERSION:  # a bool is not an integer here
        raise Malformed(f"version {msg[0]!r}, not 1")  # 3.2, rule 2
    if type(msg[1]) is not int or not 1 <= msg[1] <= MAX_TYPE:
        raise Malformed(f"type code {msg[1]!r}")  # 3.2, rule 3
    return msg


def _is_batch(msg: object) -> bool:
    return (isinstance(msg, list) and not isinstance(msg, _Map) and len(msg) >= 2
            and type(msg[0]) is int and type(msg[1]) is int and msg[1] == Type.BATCH)


def unpack(frame: bytes) -> list:
    """The frame's one message array, within the limits of 3.4, or Malformed."""
    msg = _unpack_value(frame)
    if not isinstance(msg, list) or isinstance(msg, _Map):
        raise Malformed("not a msgpack array")
    _check_nesting(msg, 1)
    return _check_message(msg)


def _field(msg: list, pos: int) -> object:
    if pos >= len(msg):
        raise Malformed(f"a type {msg[1]} message without field {pos}")  # 3.2, rule 5
    return msg[pos]


def _uint(msg: list, pos: int, top: int) -> int:
    v = _field(msg, pos)
    if type(v) is not int or not 0 <= v <= top:  # no bool, float or negative (3.3)
        raise Malformed(f"field {pos} is not a uint up to {top}")
    return v


def _str(msg: list, pos: int, is_name: bool = True) -> str:
    v = _field(msg, pos)
    if type(v) is not str:  # a bin is not a str (3.3)
        raise Malformed(f"field {pos} is not a str")
    if is_name and name_bytes(v) > MAX_NAME:
        raise Malformed(f"field {pos} is longer than {MAX_NAME} bytes")
    return v


def _bin(msg: list, pos: int) -> bytes:
    v = _field(msg, pos)
    if type(v) is bytes:
        return v
    if type(v) is str:  # a str is accepted for a bin (3.3)
        return v.encode("utf-8", STR_ERRORS)
    raise Malformed(f"field {pos} is not a bin")


@dataclasses.dataclass(frozen=True)
class Task:
    """TASK (5.3)."""

    job: str
    id: int
    attempt: int
    kind: str
    payload: bytes
    timeout_ms: int

    def ref(self) -> list:
        """Its task-ref, [job, id, attempt] (5.6)."""
        return [self.job, self.id, self.attempt]


@dataclasses.dataclass(frozen=True)
class Done:
    """DONE (5.10): the fields a worker acts on."""

    job: str
    open_jobs: int


@dataclasses.dataclass(frozen=True)
class Stop:
    """STOP (5.11)."""

    job: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Other:
    """A version 1 message of a type this worker does not act on."""

    type_code: int


Message = Union[Task, Done, Stop, Other]


def decode(frame: bytes) -> Message:
    """Decodes one message frame, checking every field this worker reads;
    elements after the last defined field are ignored (3.2, rule 4)."""
    return _decode_message(unpack(frame))


def decode_frame(frame: bytes) -> list:
    """The messages of a frame from the tasks or credit socket: one, or each
    of a BATCH (5.15), as a Message or the Malformed that drops it alone.
    Raises Malformed when the frame cannot be read at all."""
    msg = _unpack_value(frame)
    if not _is_batch(msg):
        if isinstance(msg, list) and not isinstance(msg, _Map):
            _check_nesting(msg, 1)
        return [_decode_message(_check_message(msg))]
    if msg[0] != VERSION:
        raise Malformed(f"BATCH of version {msg[0]!r}, not 1")
    if len(msg) < 3 or not isinstance(msg[2], list) or isinstance(msg[2], _Map) or not msg[2]:
        raise Malformed("BATCH messages is not a non-empty array")
    if len(msg[2]) > MAX_BATCH:
        raise Malformed(f"BATCH of {len(msg[2])} messages, more than {MAX_BATCH}")
    _check_nesting(msg, 1, MAX_DEPTH + 2)  # its array and list, then messages as deep as alone
    out: list = []
    for element in msg[2]:
        try:
            if _is_batch(element):
                raise Malformed("a BATCH inside a BATCH")
            out.append(_decode_message(_check_message(element)))
        except Malformed as e:
            out.append(e)
    return out


def _decode_message(msg: list) -> Message:
    if msg[1] == Type.TASK:
        return Task(
            job=_str(msg, 2),
            id=_uint(msg, 3, UINT64),
            attempt=_uint(msg, 4, UINT32),
            kind=_str(msg, 5),
            payload=_bin(msg, 6),
            timeout_ms=_uint(msg, 7, UINT32),
        )
    if msg[1] == Type.DONE:
        job = _str(msg, 2)
        for pos in (3, 4, 5, 7):  # total, ok, failed, elapsed_ms
            _uint(msg, pos, UINT64)
        _uint(msg, 6, UINT32)  # workers
        return Done(job=job, open_jobs=_uint(msg, 8, UINT32))
    if msg[1] == Type.STOP:
        return Stop(job=_str(msg, 2), reason=_str(msg, 3, is_name=False))
    return Other(msg[1])


# ---- task kinds (section 6) ---------------------------------------------------


class TaskFailed(Exception):
    """Raised by a handler: the task failed, with this reason as its error."""


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """What a handler sees of its task."""

    task: Task
    cancel: threading.Event  # set when the worker wants the task abandoned
    deadline: Optional[float]  # time.monotonic() when the attempt times out

    def cancelled(self) -> bool:
        """True once the task should give up: a STOP of its job, a second stop
        of the worker, or its deadline passed (6.6). Long handlers poll it."""
        return self.cancel.is_set() or (
            self.deadline is not None and time.monotonic() >= self.deadline
        )


Handler = Callable[[TaskContext], bytes]

MAX_SLEEP_MS = 86_400_000


def kind_echo(ctx: TaskContext) -> bytes:
    return ctx.task.payload


def kind_sleep(ctx: TaskContext) -> bytes:
    text = ctx.task.payload
    if not text.isdigit() or int(text) > MAX_SLEEP_MS:  # bytes: ASCII digits only
        quoted = text[:32].decode("utf-8", "replace")
        raise TaskFailed(
            f"payload must be a number of milliseconds (0-{MAX_SLEEP_MS}), got '{quoted}'"
        )
    end = time.monotonic() + int(text) / 1000
    while (left := end - time.monotonic()) > 0:  # in slices, to notice cancellation
        if ctx.cancelled():
            raise TaskFailed("cancelled")
        time.sleep(min(left, 0.05))
    return b""


def kind_py_upper(ctx: TaskContext) -> bytes:
    try:
        text = ctx.task.payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskFailed(f"payload is not valid UTF-8: {e}") from None
    return text.upper().encode("utf-8")


KINDS: dict[str, Handler] = {"echo": kind_echo, "sleep": kind_sleep, "py-upper": kind_py_upper}


# ---- running tasks on threads -------------------------------------------------


class Origin(enum.Enum):
    PUSH = "push"  # from the PULL socket
    CREDIT = "credit"  # from the DEALER, against credit granted


@dataclasses.dataclass(eq=False)
class Held:
    """A task the worker holds, queued or running (5.6, rule 2)."""

    task: Task
    origin: Origin
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    # Set by the I/O thread when it hands the task to an idle executor thread,
    # which starts the handler at once.
    started_us: int = 0  # wall clock, microseconds (5.4, rule 2)
    started_at: float = 0.0  # time.monotonic()
    deadline: Optional[float] = None  # time.monotonic() when the attempt times out (6.6)
    # Guarded by lock: the executor thread finishing it and the I/O thread
    # abandoning it (6.6) race, and exactly one of them wins.
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    finished: bool = False
    abandoned: bool = False
    dropped: bool = False  # its job was stopped: no RESULT (9.4)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A finished attempt, as the RESULT will carry it (5.4)."""

    held: Held
    ok: bool
    output: bytes
    error: str
    elapsed_us: int  # from held.started_at, on the monotonic clock


class Executor:
    """`threads` threads running handlers. Only the I/O thread calls its
    methods; executor threads touch no socket: they put each Outcome on a
    queue and write a byte to a pipe, which the I/O thread polls."""

    def __init__(self, threads: int, kinds: dict[str, Handler]) -> None:
        self._kinds = kinds
        self._work: queue.SimpleQueue[Held] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)
        self.idle = 0
        for _ in range(threads):
            self._add_thread()

    def _add_thread(self) -> None:
        threading.Thread(target=self._loop, daemon=True).start()
        self.idle += 1

    def start(self, held: Held) -> None:
        """Runs `held` now on an idle thread (the caller checked there is one)."""
        self.idle -= 1
        held.started_us = time.time_ns() // 1000
        held.started_at = time.monotonic()
        if held.task.timeout_ms:
            held.deadline = held.started_at + held.task.timeout_ms / 1000
        self._work.put(held)

    def abandon(self, held: Held, replace: bool = True) -> bool:
        """Gives up on a running task: its outcome is dropped and, with
        `replace`, a fresh thread takes its thread's place (the handler is
        asked to give up, but a thread cannot be killed). False if it has
        just finished: its outcome is then on the way."""
        with held.lock:
            if held.finished:
                return False
            held.abandoned = True
        held.cancel.set()
        if replace:
            self._add_thread()
        return True

    def finished(self) -> list[Outcome]:
        """The outcomes ready now; frees their threads."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        out = []
        while True:
            try:
                outcome = self._done.get_nowait()
            except queue.Empty:
                return out
            self.idle += 1
            out.append(outcome)

    def _loop(self) -> None:
        while True:
            held = self._work.get()
            outcome = self._run(held)
            with held.lock:
                held.finished = True
                if held.abandoned:
                    return  # replaced by a fresh thread; nobody wants this outcome
            self._done.put(outcome)
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    def _run(self, held: Held) -> Outcome:
        task = held.task
        ctx = TaskContext(task, held.cancel, held.deadline)
        ok, output, error = True, b"", ""
        handler = self._kinds.get(task.kind)
        try:
            if handler is None:
                raise TaskFailed(f"unknown task kind '{task.kind}'")  # 5.3, rule 4
            output = bytes(handler(ctx))
        except TaskFailed as e:
            ok, error = False, str(e) or "failed"
        except Exception as e:  # a handler's bug fails its task, not the worker
            ok, error = False, f"handler raised {type(e).__name__}: {e}"
        now = time.monotonic()
        if not ok and held.deadline is not None and now >= held.deadline:
            error = f"timed out after {task.timeout_ms} ms"  # 6.6, rule 1
        if not ok:
            output = b""
        return Outcome(held, ok, output, error, int((now - held.started_at) * 1e6))


# ---- the worker -------------------------------------------------------------


@dataclasses.dataclass
class Options:
    name: str
    results: str
    control: str
    tasks: Optional[str] = None  # push dispatch
    credit: Optional[str] = None  # credit dispatch
    threads: int = 1
    prefetch: Optional[int] = None  # tasks queued beyond `threads`; None: as many as threads
    exit_when_done: bool = False
    max_message: int = DEFAULT_MAX_MESSAGE

    @property
    def capacity(self) -> int:
        """Tasks held at most per dispatch mode (8.3, rule 4)."""
        return self.threads + (self.threads if self.prefetch is None else self.prefetch)


class HungHandlers(Exception):
    """Too many handlers ran on past their deadlines (6.6, rule 3)."""


@dataclasses.dataclass
class Credit:
    """The worker's side of credit dispatch (8.3)."""

    connected: bool = False  # the DEALER has a connection that completed its handshake
    reset_due: bool = False  # the next CREDIT must carry reset = true
    granted: int = 0  # granted on this connection, not yet received as TASKs
    blocked: bool = False  # the last CREDIT could not be sent yet: retry when writable


class Worker:
    """One worker process. run() owns every socket and uses them from the
    thread that calls it; signal handlers only bump stop_requests."""

    def __init__(self, opts: Options, kinds: dict[str, Handler]) -> None:
        self.opts = opts
        self.stop_requests = 0  # SIGINT/SIGTERM: 1 drains, 2 leaves at once (9.3)
        self.executor = Executor(opts.threads, kinds)
        self.queued: collections.deque[Held] = collections.deque()
        self.running: list[Held] = []
        self.held = {Origin.PUSH: 0, Origin.CREDIT: 0}  # queued or running, by origin
        self.credit = Credit()
        self.stopped_jobs: collections.deque[str] = collections.deque(maxlen=STOPPED_JOBS_KEPT)
        self.returned: list[list] = []  # task-refs handed back in BYE (5.7)
        self.abandoned_alive: list[Held] = []  # handlers abandoned and still running (6.6)
        self.draining = False
        self.done_seen = False
        self.tasks_done = self.ok = self.failed = 0
        self.dropped_frames = 0
        self.warned_peers: set[str] = set()
        self.ctx = zmq.Context()
        self.results: Optional[zmq.Socket] = None
        self.control: Optional[zmq.Socket] = None
        self.pull: Optional[zmq.Socket] = None
        self.dealer: Optional[zmq.Socket] = None
        self.monitor: Optional[zmq.Socket] = None

    # -- sockets (2.2, 2.4) --

    def _socket(self, kind: int, receives: bool) -> zmq.Socket:
        """A socket with PROTOCOL.md 2.4's settings: reconnection after 10 ms
        backing off to 100 ms, ZMTP heartbeats, TCP keepalive, a frame size
        limit on receivers."""
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 1000)
        s.setsockopt(zmq.RECONNECT_IVL, 10)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        s.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        s.setsockopt(zmq.HEARTBEAT_TTL, 5000)
        s.setsockopt(zmq.TCP_KEEPALIVE, 1)
        if receives:
            s.setsockopt(zmq.MAXMSGSIZE, self.opts.max_message)
        return s

    def _connect(self) -> None:
        o = self.opts
        self.results = self._socket(zmq.PUSH, receives=False)
        self.results.setsockopt(zmq.SNDHWM, 100_000)
        self.results.connect(o.results)
        self.control = self._socket(zmq.SUB, receives=True)
        self.control.setsockopt(zmq.SUBSCRIBE, b"DONE")  # 2.2, rule 4
        self.control.setsockopt(zmq.SUBSCRIBE, b"STOP")
        self.control.connect(o.control)
        if o.tasks:
            self.pull = self._socket(zmq.PULL, receives=True)
            self.pull.setsockopt(zmq.RCVHWM, 64)
            self.pull.connect(o.tasks)
        if o.credit:
            self.dealer = self._socket(zmq.DEALER, receives=True)
            self.dealer.setsockopt(zmq.ROUTING_ID, o.name.encode("utf-8", STR_ERRORS))  # 8.2
            self.dealer.setsockopt(zmq.IMMEDIATE, 1)  # 8.3, rule 1
            self.monitor = self.dealer.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
            )
            self.dealer.connect(o.credit)

    def _close(self) -> None:
        if self.dealer is not None:
            self.dealer.disable_monitor()
        for s in (self.pull, self.dealer, self.monitor, self.control):
            if s is not None:
                s.close(linger=0)
        if self.results is not None:
            self.results.close(linger=RESULTS_LINGER_MS)
        self.ctx.term()  # waits until the last RESULTs and BYE are out, up to the linger

    def _send(self, type_code: Type, *fields: object) -> None:
        assert self.results is not None
        self.results.send(encode(type_code, *fields))

    def _drop(self, sock_name: str, frame: zmq.Frame, why: str) -> None:
        """Counts a bad frame; warns once per sender (3.7)."""
        self.dropped_frames += 1
        try:
            peer = frame.get("Peer-Address")
        except zmq.ZMQError:
            peer = "?"
        if peer not in self.warned_peers and len(self.warned_peers) < 1024:
            self.warned_peers.add(peer)
            log.warning("dropped a bad frame on %s from %s: %s", sock_name, peer, why)

    # -- the loop --

    def run(self) -> int:
        """Serves tasks until stopped or done. Returns the exit status."""
        o = self.opts
        try:
            self._connect()
        except zmq.ZMQError as e:
            log.error("cannot connect: %s", e)
            self.ctx.destroy(linger=0)
            return 1
        self._send(Type.HELLO, o.name, clip_name(socket.gethostname()), os.getpid(), o.threads,
                   SOFTWARE_VERSION)
        log.info("worker %s up: %d thread(s), tasks %s, credit %s, results %s", o.name,
                 o.threads, o.tasks or "-", o.credit or "-", o.results)
        status = 0
        try:
            self._loop()
        except HungHandlers as e:
            log.error("%s; the worker left", e)
            status = 3
        self._send(Type.BYE, o.name, self.returned[:MAX_LIST])
        log.info("worker %s leaving: %d ok, %d failed, %d handed back, %d bad frames dropped",
                 o.name, self.ok, self.failed, len(self.returned), self.dropped_frames)
        self._close()
        return status

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.executor.wake_fd, zmq.POLLIN)
        if self.monitor is not None:
            poller.register(self.monitor, zmq.POLLIN)
        next_heartbeat = time.monotonic() + HEARTBEAT_INTERVAL
        while True:
            # Leaving (7.6, 9.3): first run what runs and hand back what waits;
            # on a second stop, also hand back what runs, without its RESULT.
            if (self.stop_requests >= 1 or self.done_seen) and not self.draining:
                self.draining = True
                self._hand_back_queued()
            if self.stop_requests >= 2:
                self._finish()  # RESULTs of the tasks that did finish go out
                self._abandon_running()
                return
            if self.draining and not self.running:
                return

            self._grant_credit()
            while self.queued and self.executor.idle > 0:
                held = self.queued.popleft()
                self.running.append(held)
                self.executor.start(held)

            if self.pull is not None:
                want_push = not self.draining and self.held[Origin.PUSH] < MAX_PUSH_HELD
                poller.register(self.pull, zmq.POLLIN if want_push else 0)
            if self.dealer is not None:
                writable = zmq.POLLOUT if self.credit.blocked else 0  # a CREDIT to retry
                poller.register(self.dealer, zmq.POLLIN | writable)
            wait = min(POLL_INTERVAL_MS / 1000, next_heartbeat - time.monotonic())
            ready = dict(poller.poll(max(0, int(wait * 1000))))

            if self.executor.wake_fd in ready:
                self._finish()
            if self.control in ready:
                self._on_control()
            if self.monitor is not None and self.monitor in ready:
                self._on_monitor()
            if self.dealer is not None and self.dealer in ready:
                self._read_tasks(self.dealer, "credit", Origin.CREDIT)
            if self.pull is not None and self.pull in ready:
                self._read_tasks(self.pull, "tasks", Origin.PUSH)
            self._watch_hung()
            if time.monotonic() >= next_heartbeat:  # 5.6: every task held, queued or running
                next_heartbeat = time.monotonic() + HEARTBEAT_INTERVAL
                holding = [h.task.ref() for h in (*self.running, *self.queued)]
                self._send(Type.HEARTBEAT, self.opts.name, self.tasks_done, holding[:MAX_LIST],
                           clip_name(socket.gethostname()), os.getpid(), self.opts.threads,
                           SOFTWARE_VERSION)  # 5.6: what HELLO said, for a sink that missed it

    # -- tasks in --

    def _read_tasks(self, sock: zmq.Socket, sock_name: str, origin: Origin) -> None:
        """Takes the TASKs waiting on the PULL or DEALER socket."""
        for _ in range(1024):
            if origin is Origin.PUSH and (self.draining or self.held[origin] >= MAX_PUSH_HELD):
                return
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if frame.more:  # a single frame is a message here (3.1, 3.6): drop it whole
                while sock.getsockopt(zmq.RCVMORE):
                    sock.recv()
                self._drop(sock_name, frame, "a multipart message")
                continue
            try:
                messages = decode_frame(frame.bytes)
            except Malformed as e:
                self._drop(sock_name, frame, str(e))
                continue
            for task in messages:
                self._take_task(task, sock_name, frame, origin)

    def _take_task(self, task: object, sock_name: str, frame: zmq.Frame, origin: Origin) -> None:
        """One message read from the tasks or credit socket (5.15, rule 1)."""
        if isinstance(task, Malformed):  # 5.15, rule 2: dropped alone
            self._drop(sock_name, frame, str(task))
            return
        if not isinstance(task, Task):  # 3.7, rule 3
            self._drop(sock_name, frame, "not a TASK")
            return
        if origin is Origin.CREDIT:  # 8.4, rule 3: counted against credit, accepted
            self.credit.granted = max(0, self.credit.granted - 1)
        if task.job in self.stopped_jobs:  # 9.4: a straggler of a cancelled job
            return
        if self.draining:  # 9.3, rule 1: not run, handed back in BYE
            self._hand_back(task)
            return
        self.held[origin] += 1
        self.queued.append(Held(task, origin))

    def _hand_back(self, task: Task) -> None:
        if len(self.returned) < MAX_LIST:
            self.returned.append(task.ref())

    def _hand_back_queued(self) -> None:
        while self.queued:
            held = self.queued.popleft()
            self.held[held.origin] -= 1
            self._hand_back(held.task)
        if self.returned:
            log.info("leaving: %d queued task(s) handed back", len(self.returned))

    def _abandon_running(self) -> None:
        """Leaving at once: running tasks get no RESULT and are handed back."""
        for held in self.running:
            self.executor.abandon(held, replace=False)
            self.held[held.origin] -= 1
            self._hand_back(held.task)
        self.running.clear()

    # -- results out --

    def _finish(self) -> None:
        for out in self.executor.finished():
            held = out.held
            self.running.remove(held)
            self.held[held.origin] -= 1
            if not held.dropped:  # its job was not stopped meanwhile (9.4)
                self._send_result(held, out.ok, out.output, out.error, out.elapsed_us)

    def _send_result(self, held: Held, ok: bool, output: bytes, error: str,
                     elapsed_us: int) -> None:
        t = held.task
        self._send(Type.RESULT, t.job, t.id, t.attempt, self.opts.name, 0 if ok else 1,
                   elapsed_us, output, error, held.started_us, t.kind)  # 5.4
        self.tasks_done += 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def _watch_hung(self) -> None:
        """Abandons handlers still running a grace period past their deadline,
        answering their tasks failed (6.6, rule 2); leaves when too many
        abandoned handlers are still running (6.6, rule 3)."""
        now = time.monotonic()
        for held in [h for h in self.running if h.deadline and now >= h.deadline + HUNG_GRACE]:
            if not self.executor.abandon(held):
                continue  # it has just finished: its outcome is on the way
            self.running.remove(held)
            self.held[held.origin] -= 1
            self.abandoned_alive.append(held)
            t = held.task
            log.warning("task %s/%d attempt %d: no return %d ms past its %d ms timeout; abandoned",
                        t.job, t.id, t.attempt, int(HUNG_GRACE * 1000), t.timeout_ms)
            if not held.dropped:
                self._send_result(held, False, b"",
                                  f"timed out after {t.timeout_ms} ms; the handler did not"
                                  " return and was abandoned",
                                  int((now - held.started_at) * 1e6))
        self.abandoned_alive = [h for h in self.abandoned_alive if not h.finished]
        if len(self.abandoned_alive) > max(4, self.opts.threads):
            self._hand_back_queued()
            self._abandon_running()
            raise HungHandlers(f"{len(self.abandoned_alive)} handlers did not return past"
                               " their deadline")

    # -- control (7.6, 9.4) --

    def _on_control(self) -> None:
        assert self.control is not None
        for _ in range(64):
            try:
                parts = self.control.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(parts) == 1:
                continue  # a topic frame alone is skipped (3.5, rule 3)
            if len(parts) != 2:
                self._drop("control", parts[0], f"{len(parts)} frames")  # 3.5, rule 5
                continue
            try:
                msg = decode(parts[1].bytes)
            except Malformed as e:
                self._drop("control", parts[1], str(e))
                continue
            if isinstance(msg, Done):
                log.debug("job %s is done (%d open on the sink)", msg.job, msg.open_jobs)
                if msg.open_jobs == 0 and self.opts.exit_when_done:
                    self.done_seen = True
            elif isinstance(msg, Stop):
                self._stop_job(msg)

    def _stop_job(self, stop: Stop) -> None:
        """9.4: drop the job's queued tasks, ask its running ones to give up,
        and send no RESULT of it from now on."""
        if stop.job in self.stopped_jobs:
            return
        log.info("job %s stopped: %s", stop.job, stop.reason)
        self.stopped_jobs.append(stop.job)
        keep: collections.deque[Held] = collections.deque()
        for held in self.queued:
            if held.task.job == stop.job:
                self.held[held.origin] -= 1  # its credit is granted again
            else:
                keep.append(held)
        self.queued = keep
        for held in self.running:
            if held.task.job == stop.job:
                held.dropped = True
                held.cancel.set()

    # -- credit (8.3) --

    def _on_monitor(self) -> None:
        assert self.monitor is not None
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self.credit.granted = 0  # credit never outlives its connection
            self.credit.blocked = False
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.credit.connected = True
                self.credit.reset_due = True  # rule 3: the first CREDIT resets
                log.debug("credit connection up")
            else:
                self.credit.connected = False
                log.debug("credit connection down")

    def _grant_credit(self) -> None:
        """Grants all free credit (rule 4): capacity minus the credit tasks
        held minus the credit granted and not yet used; a reset even if 0."""
        c = self.credit
        if self.dealer is None or not c.connected or self.draining:
            return
        free = max(0, self.opts.capacity - self.held[Origin.CREDIT] - c.granted)
        if not c.reset_due and free == 0:
            return
        try:
            self.dealer.send(encode(Type.CREDIT, self.opts.name, free, c.reset_due), zmq.NOBLOCK)
        except zmq.Again:  # not attached yet: retry once the DEALER is writable
            c.blocked = True
            return
        c.blocked = False
        c.granted += free
        c.reset_due = False


# ---- command line -------------------------------------------------------------


def default_name() -> str:
    """HOST-PID-RANDOM, at most 255 bytes (a routing id, 8.2)."""
    suffix = f"-{os.getpid()}-{random.randrange(0x10000):04x}"
    host = socket.gethostname().encode("utf-8", STR_ERRORS)[: 255 - len(suffix)]
    return host.decode("utf-8", "ignore") + suffix


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(
        prog="worker.py",
        description="A zfarm worker (protocol zfarm/1) in Python: kinds echo, sleep, py-upper.",
    )
    p.add_argument("--connect", metavar="HOST",
                   help="the ventilator and the sink run on HOST, default ports (default: "
                        "localhost, when no endpoint is given)")
    p.add_argument("--tasks", metavar="EP", help="ventilator's tasks endpoint (push dispatch)")
    p.add_argument("--credit", metavar="EP", help="ventilator's credit endpoint (credit dispatch)")
    p.add_argument("--results", metavar="EP", help="sink's results endpoint")
    p.add_argument("--control", metavar="EP", help="sink's control endpoint")
    p.add_argument("--threads", type=int, default=1, help="tasks run at once (default 1)")
    p.add_argument("--prefetch", type=int,
                   help="tasks queued beyond --threads, per dispatch mode (default: --threads)")
    p.add_argument("--id", help="worker name (default HOST-PID-RANDOM)")
    p.add_argument("--exit-when-done", action="store_true",
                   help="exit once the sink reports every open job done")
    p.add_argument("--max-message", type=int, default=DEFAULT_MAX_MESSAGE, metavar="BYTES",
                   help="the largest frame accepted (default 16 MiB)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log detail")
    p.add_argument("-q", "--quiet", action="store_true", help="errors only")
    a = p.parse_args(argv)

    endpoints = (a.tasks, a.credit, a.results, a.control)
    if a.connect and any(endpoints):
        p.error("--connect excludes --tasks, --credit, --results and --control")
    host = a.connect or (None if any(endpoints) else "localhost")
    if host:
        a.tasks, a.credit = f"tcp://{host}:5557", f"tcp://{host}:5560"
        a.results, a.control = f"tcp://{host}:5558", f"tcp://{host}:5559"
    if not (a.results and a.control):
        p.error("--results and --control are both required without --connect")
    if not (a.tasks or a.credit):
        p.error("--tasks or --credit is required without --connect")
    if not 1 <= a.threads <= 4096:
        p.error("--threads must be 1-4096")
    if a.prefetch is not None and not 0 <= a.prefetch <= 100_000:
        p.error("--prefetch must be 0-100000")
    if not 1024 <= a.max_message <= 2**31:
        p.error("--max-message must be 1024-2147483648")
    name = a.id if a.id is not None else default_name()
    if not 1 <= name_bytes(name) <= 255 or name.startswith("\0"):
        p.error("--id must be 1-255 bytes, not starting with a zero byte (a routing id, 8.2)")

    level = logging.ERROR if a.quiet else logging.DEBUG if a.verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s.%(msecs)03d worker.py %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    return Options(name=name, results=a.results, control=a.control, tasks=a.tasks,
                   credit=a.credit, threads=a.threads, prefetch=a.prefetch,
                   exit_when_done=a.exit_when_done, max_message=a.max_message)


def main(argv: list[str]) -> int:
    worker = Worker(parse_args(argv), KINDS)

    def on_signal(signum: int, frame: object) -> None:
        worker.stop_requests += 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
