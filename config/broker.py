"""Crash- and concurrency-safe filesystem transport for kombu / Celery.

A drop-in replacement for :mod:`kombu.transport.filesystem` (same URL
``filesystem://``, same ``data_folder_in`` / ``data_folder_out`` /
``control_folder`` / ``processed_folder`` / ``store_processed`` options, same
``<ts>_<id>.<queue>.msg`` file names), fixing kombu issue #1551: with several
processes the stock transport lets a consumer read a message file that the
producer has created but not yet written, and the worker dies with
``Unrecoverable error: JSONDecodeError(...)``; the message is lost.

Selecting it
============
Celery (Django settings with the ``CELERY_`` namespace)::

    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"   # module:Class
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": ".../queue", "data_folder_out": ".../queue",
        "control_folder": ".../control", "processed_folder": ".../processed",
        "store_processed": False, "polling_interval": 0.05,
    }

``broker_transport`` wins over the URL scheme (kombu only derives the
transport from the scheme when no ``transport`` is given).  Plain kombu:
``Connection("filesystem://", transport=Transport, transport_options=...)``
or ``transport="config.broker:Transport"``.

Protocol
========
Every process that uses the same folders must use this transport.

1. **Write-tmp-then-rename.**  A message (and every exchange/binding table in
   ``control_folder``) is written to ``.<final name>.tmp`` in the *same*
   folder (a leading dot: consumers list only names that do not start with
   ``.`` and end with ``.msg``), ``fsync``-ed, closed and then
   ``os.rename``-d to its final name.  rename(2) within one filesystem is
   atomic, so a ``*.msg`` file is either absent or complete.

2. **Claim by rename.**  A consumer takes a message by renaming it from the
   queue folder into its own claim folder
   ``<claimed_folder>/<node>__<pid>__<process start time>/``
   before opening it.  Exactly one rename of a given source can succeed; a
   consumer whose rename fails with ``ENOENT`` lost the race and moves on.

3. **Ack deletes.**  The claimed file is kept until the message is
   acknowledged: ``basic_ack`` (and ``basic_reject(requeue=False)``) deletes
   it (or moves it to ``processed_folder`` when ``store_processed``).
   ``basic_reject(requeue=True)``, ``basic_recover`` and kombu's own
   restore-on-close (``QoS.restore_unacked_once``) rename the claimed file back
   into the queue folder instead of publishing a copy, so a message is never
   duplicated on the normal path.  Messages consumed with ``no_ack=True`` (the
   Celery pidbox/control consumers) are deleted right after they are read.
   The delivery tag of a delivered message is its claim file name (kombu's
   publish-time tag stays in the file).

4. **Dead-claim recovery.**  Every consumer, on its poll (at most once every
   ``recovery_interval`` seconds), looks at the other owners' claim folders
   and renames their files back into the queue (name marked ``_r``; the
   redelivered message has ``delivery_info['redelivered'] = True``) when

   * the owner ran on this node (same host name and PID namespace) and its
     process is gone: no such pid, a zombie, or a pid reused by a process
     with another start time; or
   * the owner has not touched its claim folder for ``visibility_timeout``
     seconds (default 3600; ``None`` disables it).  A live owner refreshes
     the folder's mtime on every poll (at most every ``recovery_interval``),
     so long tasks of a polling worker are *not* stolen; it covers owners on
     other hosts (shared/NFS folder) and hung processes.  A worker that does
     not poll while it runs a task (``--pool solo``) has tasks longer than
     ``visibility_timeout`` redelivered, as with the Redis transport.

   This is at-least-once: a consumer that dies after running a task but
   before the ack gets the message delivered again; nothing is lost.

5. **Corrupt files aside.**  A ``*.msg`` file that cannot be read or decoded
   (not JSON, not a kombu message) is moved to ``corrupt_folder`` and logged
   with ``logging.error``; the consumer goes on with the next file.
   Temporary files older than ``stale_tmp_timeout`` (a producer died while
   writing) are moved there as well (``logging.warning``).

6. **Fan-out.**  As in kombu's transport, bindings live in
   ``control_folder/<exchange>.exchange`` (JSON); a fan-out publish writes one
   message file per bound queue.  Table updates are read-modify-write under
   an ``flock`` on ``.<exchange>.exchange.lock`` and replace the table by
   write-tmp-then-rename, so readers need no lock and never see a partial
   table.

Extra transport options (defaults)
==================================
* ``claimed_folder`` (``<data_folder_in>/.claimed``) and ``corrupt_folder``
  (``<data_folder_in>/.corrupt``) -- must be on the same filesystem as
  ``data_folder_in``.
* ``visibility_timeout`` (3600 s), ``recovery_interval`` (5 s),
  ``stale_tmp_timeout`` (3600 s).
* ``fsync`` (True): fsync message/table files before the rename;
  ``fsync_directory`` (False): also fsync the folder after the rename (needed
  only for durability across power loss, not for correctness between
  processes).
* ``listing_max_age`` (1.0 s): a consumer lists the queue folder once and then
  claims from that listing; it lists again when the listing for the queue is
  used up or older than this.

All folders are created when missing.  POSIX only (uses ``fcntl.flock``,
``os.kill(pid, 0)`` and, on Linux, ``/proc`` for zombie/pid-reuse checks).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections import deque, namedtuple
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

__all__ = ("Channel", "Transport")

logger = logging.getLogger(__name__)

MSG_SUFFIX = ".msg"
TMP_SUFFIX = ".tmp"
REDELIVERED_MARK = "_r"
OWNER_SEP = "__"
#: seconds between scans for stale temporary files (per channel)
TMP_CLEANUP_INTERVAL = 60.0

exchange_queue_t = namedtuple("exchange_queue_t",
                              ["routing_key", "pattern", "queue"])

#: Exchange names end up in file names under ``control_folder``.
EXCHANGE_NAME_RE = re.compile(r"\A[A-Za-z0-9._-]+\Z")


# --------------------------------------------------------------------------
# process identity / liveness
# --------------------------------------------------------------------------

def _proc_stat(pid):
    """Return ``(state, starttime)`` of *pid* from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0].decode(), int(fields[19])
    except (ValueError, IndexError):
        return None


def _node_id():
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"
    try:  # a PID is only meaningful inside its PID namespace (containers)
        host += f"-ns{os.stat('/proc/self/ns/pid').st_ino:x}"
    except OSError:
        pass
    return host


_identity_lock = threading.Lock()
_identity = {}  # pid -> owner token


def _owner_token():
    """``<node>__<pid>__<start time>`` of the current process."""
    pid = os.getpid()
    token = _identity.get(pid)
    if token is None:
        with _identity_lock:
            stat = _proc_stat(pid)
            start = stat[1] if stat else 0
            token = _identity[pid] = f"{_node_id()}{OWNER_SEP}{pid}{OWNER_SEP}{start}"
    return token


def _parse_owner(token):
    try:
        node, pid, start = token.rsplit(OWNER_SEP, 2)
        return node, int(pid), int(start)
    except ValueError:
        return None


def _pid_alive(pid, start):
    """Is the process *pid* that started at *start* (0: unknown) running?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    except OSError:
        return True  # cannot tell: assume alive (no premature stealing)
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc (or it just exited): trust kill()
    state, starttime = stat
    if state in ("Z", "X"):
        return False  # zombie: dead, parent has not reaped it yet
    if start and starttime != start:
        return False  # pid reused by another process
    return True


# --------------------------------------------------------------------------
# file helpers
# --------------------------------------------------------------------------

def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(folder, name, data, fsync=True, fsync_directory=False):
    """Write *data* to ``folder/name`` so that it appears complete or not at all.

    Written to ``folder/.<name>.<random>.tmp`` first (ignored by consumers),
    fsync-ed, then renamed over ``folder/name``.
    """
    final = os.path.join(folder, name)
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                 | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync_directory:
        _fsync_dir(folder)
    return final


def _move_aside(src, folder, reason, level=logging.ERROR):
    """Move *src* into *folder* (never overwriting) and log it."""
    base = os.path.basename(src).lstrip(".")
    dst = os.path.join(folder, f"{base}.{uuid.uuid4().hex[:8]}")
    try:
        os.makedirs(folder, exist_ok=True)
        os.rename(src, dst)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("Cannot move bad message file %s aside to %s: %r",
                     src, folder, exc)
        return None
    logger.log(level, "Moved bad message file %s to %s: %s", src, dst, reason)
    return dst


def _queue_of(name):
    """Queue name of a ready message file name, or None if not one."""
    if name.startswith(".") or not name.endswith(MSG_SUFFIX):
        return None
    stem, dot, rest = name.partition(".")
    if not dot or not rest.endswith(MSG_SUFFIX):
        return None
    return rest[:-len(MSG_SUFFIX)]


# per process and claimed folder: time of the last recovery scan/heartbeat
_maintenance_lock = threading.Lock()
_last_maintenance = {}


class Channel(virtual.Channel):
    """Filesystem channel: see the module docstring for the protocol."""

    supports_fanout = True

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        opts = dict(connection.client.transport_options or {})
        self.data_folder_in = os.fspath(opts.get("data_folder_in", "data_in"))
        self.data_folder_out = os.fspath(
            opts.get("data_folder_out", "data_out"))
        self.store_processed = bool(opts.get("store_processed", False))
        self.processed_folder = os.fspath(
            opts.get("processed_folder", "processed"))
        self.control_folder = Path(opts.get("control_folder", "control"))
        self.claimed_folder = os.fspath(opts.get(
            "claimed_folder", os.path.join(self.data_folder_in, ".claimed")))
        self.corrupt_folder = os.fspath(opts.get(
            "corrupt_folder", os.path.join(self.data_folder_in, ".corrupt")))
        vt = opts.get("visibility_timeout", 3600)
        self.visibility_timeout = None if vt is None else float(vt)
        self.recovery_interval = float(opts.get("recovery_interval", 5.0))
        self.stale_tmp_timeout = float(opts.get("stale_tmp_timeout", 3600))
        self.fsync = bool(opts.get("fsync", True))
        self.fsync_directory = bool(opts.get("fsync_directory", False))
        self.listing_max_age = float(opts.get("listing_max_age", 1.0))
        poll = connection.polling_interval or 0.0
        # do not list the folder more than once per poll round when idle
        self._min_relist = min(max(poll, 0.0), 1.0) * 0.5
        for folder in (self.data_folder_in, self.data_folder_out,
                       self.claimed_folder):
            os.makedirs(folder, exist_ok=True)
        self._ready = {}        # queue -> deque of file names (one listing)
        self._listed_at = None  # monotonic time of that listing
        self._noack = {}        # consumer_tag -> queue consumed with no_ack
        self._next_maintenance = 0.0
        self._next_tmp_cleanup = 0.0

    # -- identity -----------------------------------------------------------

    @property
    def owner_folder(self):
        """This process's claim folder (depends on the pid: fork-safe)."""
        return os.path.join(self.claimed_folder, _owner_token())

    def _claim_path(self, delivery_tag):
        tag = str(delivery_tag)
        if not tag or os.sep in tag or tag.startswith(".") or (
                os.altsep and os.altsep in tag):
            return None
        return os.path.join(self.owner_folder, tag)

    # -- producing ----------------------------------------------------------

    @staticmethod
    def _check_queue_name(queue):
        if (not isinstance(queue, str) or not queue or "/" in queue
                or "\0" in queue or (os.altsep and os.altsep in queue)
                or len(queue.encode()) > 180):
            raise ChannelError(f"Invalid queue name for filesystem transport:"
                               f" {queue!r}")

    def _put(self, queue, payload, **kwargs):
        """Put *payload* onto *queue*: write-tmp-fsync-rename."""
        self._check_queue_name(queue)
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}{MSG_SUFFIX}"
        data = str_to_bytes(dumps(payload))
        try:
            atomic_write(self.data_folder_out, name, data, fsync=self.fsync,
                         fsync_directory=self.fsync_directory)
        except FileNotFoundError:
            os.makedirs(self.data_folder_out, exist_ok=True)
            try:
                atomic_write(self.data_folder_out, name, data,
                             fsync=self.fsync,
                             fsync_directory=self.fsync_directory)
            except OSError as exc:
                raise ChannelError(f"Cannot add message {name!r} to "
                                   f"{self.data_folder_out!r}: {exc}") from exc
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to "
                               f"{self.data_folder_out!r}: {exc}") from exc

    def _put_fanout(self, exchange, payload, routing_key, **kwargs):
        for q in self.get_table(exchange):
            self._put(q.queue, payload, **kwargs)

    # -- consuming ----------------------------------------------------------

    def _relist(self):
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:
            names = []
        names.sort()
        ready = {}
        for name in names:
            queue = _queue_of(name)
            if queue is not None:
                ready.setdefault(queue, deque()).append(name)
        self._ready = ready
        self._listed_at = time.monotonic()

    def _candidates(self, queue):
        now = time.monotonic()
        pending = self._ready.get(queue)
        age = None if self._listed_at is None else now - self._listed_at
        if age is None or age >= self.listing_max_age or (
                not pending and age >= self._min_relist):
            self._relist()
            pending = self._ready.get(queue)
        return pending

    def _claim(self, name):
        """Atomically move a ready file into our claim folder."""
        src = os.path.join(self.data_folder_in, name)
        owner = self.owner_folder
        dst = os.path.join(owner, name)
        for _attempt in range(2):
            try:
                os.rename(src, dst)
                return dst
            except FileNotFoundError:
                # either another consumer won, or our folder is missing
                # (first claim, or removed by a recovering consumer)
                if os.path.isdir(owner):
                    return None
                os.makedirs(owner, exist_ok=True)
            except OSError as exc:
                logger.warning("Cannot claim message file %s: %r", src, exc)
                return None
        return None

    def _read_claimed(self, path, name):
        """Read and decode a claimed file; move it aside if it is bad."""
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None  # recovered by someone else meanwhile
        except OSError as exc:
            _move_aside(path, self.corrupt_folder, f"unreadable: {exc!r}")
            return None
        try:
            payload = loads(bytes_to_str(raw))
            if not isinstance(payload, dict) or not isinstance(
                    payload.get("properties"), dict):
                raise ValueError("not a kombu message (no properties)")
            props = payload["properties"]
            if props.get("delivery_info") is None:
                props["delivery_info"] = {}
            elif not isinstance(props["delivery_info"], dict):
                raise ValueError("delivery_info is not an object")
        except Exception as exc:  # JSONDecodeError, UnicodeDecodeError, ...
            _move_aside(path, self.corrupt_folder,
                        f"{type(exc).__name__}: {exc} ({len(raw)} bytes)")
            return None
        props["delivery_tag"] = name
        if name.partition(".")[0].endswith(REDELIVERED_MARK):
            payload["redelivered"] = True
            props["delivery_info"]["redelivered"] = True
        return payload

    def _get(self, queue, timeout=None):
        """Claim and return the next message of *queue*."""
        self._maintenance()
        pending = self._candidates(queue)
        while pending:
            name = pending.popleft()
            path = self._claim(name)
            if path is None:
                continue
            payload = self._read_claimed(path, name)
            if payload is None:
                continue
            if queue in self._noack.values():
                self._finish_claim(name, quiet=True)
            return payload
        raise Empty()

    def drain_events(self, timeout=None, callback=None):
        # runs on every poll, also while the prefetch window is full
        self._maintenance()
        return super().drain_events(timeout=timeout, callback=callback)

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._noack[consumer_tag] = queue
        return super().basic_consume(queue, no_ack, callback, consumer_tag,
                                     **kwargs)

    def basic_cancel(self, consumer_tag):
        self._noack.pop(consumer_tag, None)
        return super().basic_cancel(consumer_tag)

    def basic_get(self, queue, no_ack=False, **kwargs):
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._finish_claim(message.delivery_tag, quiet=True)
        return message

    # -- acknowledging ------------------------------------------------------

    def _finish_claim(self, delivery_tag, quiet=False):
        """Delete (or archive) the claimed file of an acked message."""
        path = self._claim_path(delivery_tag)
        if path is None:
            return
        try:
            if self.store_processed:
                os.makedirs(self.processed_folder, exist_ok=True)
                dst = os.path.join(self.processed_folder,
                                   os.path.basename(path))
                try:
                    os.rename(path, dst)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    shutil.move(path, dst)
            else:
                os.unlink(path)
        except FileNotFoundError:
            if not quiet:
                logger.warning(
                    "Acked message %s is no longer claimed by this process "
                    "(recovered by another consumer after visibility_timeout"
                    "?); it may be delivered twice.", delivery_tag)
        except OSError as exc:
            logger.error("Cannot remove acked message file %s: %r", path, exc)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._finish_claim(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        # requeue=True goes through QoS.reject -> _restore_at_beginning
        super().basic_reject(delivery_tag, requeue=requeue)
        if not requeue:
            self._finish_claim(delivery_tag)

    def _requeue_file(self, path):
        """Rename a claimed file back into the queue folder (marked _r)."""
        name = os.path.basename(path)
        stem, _, rest = name.partition(".")
        if not stem.endswith(REDELIVERED_MARK):
            stem += REDELIVERED_MARK
        dst = os.path.join(self.data_folder_in, f"{stem}.{rest}")
        os.rename(path, dst)
        return dst

    def _restore(self, message):
        """Requeue an unacked message by moving its claim file back.

        Called by kombu for ``basic_reject(requeue=True)``,
        ``basic_recover`` and ``restore_unacked_once`` (channel close / gc).
        Not re-publishing a copy keeps this path free of duplicates.  If the
        claim is gone (acked, already restored, recovered by another consumer,
        or we are a forked child that does not own it) there is nothing to do.
        """
        path = self._claim_path(message.delivery_tag)
        if path is None:
            logger.warning("Not restoring message with foreign delivery tag "
                           "%r", message.delivery_tag)
            return
        try:
            self._requeue_file(path)
        except FileNotFoundError:
            logger.debug("Claim %s already gone; nothing to restore", path)
        self._listed_at = None  # restored message is at the queue head

    def _restore_at_beginning(self, message):
        return self._restore(message)

    # -- recovery of abandoned claims ----------------------------------------

    def _maintenance(self, force=False):
        """Heartbeat + recovery of abandoned claims (+ stale tmp cleanup).

        Rate limited per process and claimed folder, so it costs one
        monotonic() call on most polls.
        """
        now = time.monotonic()
        if not force and now < self._next_maintenance:
            return
        key = (os.getpid(), self.claimed_folder)
        interval = self.recovery_interval
        if self.visibility_timeout:
            interval = min(interval, self.visibility_timeout / 4.0)
        with _maintenance_lock:
            last = _last_maintenance.get(key)
            if not force and last is not None and now - last < interval:
                self._next_maintenance = last + interval
                return
            _last_maintenance[key] = now
        self._next_maintenance = now + interval
        try:
            self._heartbeat()
            self.recover_abandoned()
            if force or now >= self._next_tmp_cleanup:
                self._next_tmp_cleanup = now + TMP_CLEANUP_INTERVAL
                self._cleanup_stale_tmp()
        except Exception as exc:  # never kill the consumer from here
            logger.exception("filesystem transport maintenance failed: %r",
                             exc)

    def _heartbeat(self):
        try:
            os.utime(self.owner_folder)
        except FileNotFoundError:
            pass

    def _owner_abandoned(self, owner, path, me_node):
        parsed = _parse_owner(owner)
        if parsed is not None:
            node, pid, start = parsed
            if node == me_node and not _pid_alive(pid, start):
                return f"owner process {pid} is gone"
        if self.visibility_timeout:
            try:
                age = time.time() - os.stat(path).st_mtime
            except FileNotFoundError:
                return None
            if age > self.visibility_timeout:
                return f"owner idle for {age:.0f} s > visibility_timeout"
        return None

    def recover_abandoned(self):
        """Requeue the claims of dead/expired owners.  Returns the count."""
        me = _owner_token()
        me_node = me.rsplit(OWNER_SEP, 2)[0]
        try:
            owners = os.listdir(self.claimed_folder)
        except FileNotFoundError:
            return 0
        restored = 0
        for owner in owners:
            if owner == me or owner.startswith("."):
                continue
            path = os.path.join(self.claimed_folder, owner)
            if not os.path.isdir(path):
                continue
            reason = self._owner_abandoned(owner, path, me_node)
            if reason is None:
                continue
            try:
                names = os.listdir(path)
            except FileNotFoundError:
                continue
            count = 0
            for name in names:
                if _queue_of(name) is None:
                    continue
                try:
                    self._requeue_file(os.path.join(path, name))
                    count += 1
                except FileNotFoundError:
                    pass  # another consumer restored it first
                except OSError as exc:
                    logger.error("Cannot restore %s: %r", name, exc)
            try:
                os.rmdir(path)
            except OSError:
                pass
            if count:
                restored += count
                self._listed_at = None
                logger.warning("Restored %d unacked message(s) claimed by %s "
                               "(%s)", count, owner, reason)
        return restored

    def _cleanup_stale_tmp(self):
        limit = time.time() - self.stale_tmp_timeout
        for folder in {self.data_folder_in, self.data_folder_out}:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                    continue
                path = os.path.join(folder, name)
                try:
                    if os.stat(path).st_mtime >= limit:
                        continue
                except FileNotFoundError:
                    continue
                _move_aside(path, self.corrupt_folder,
                            "stale temporary file (producer died while "
                            "writing?)", level=logging.WARNING)

    # -- queue management ----------------------------------------------------

    def _matching(self, queue):
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:
            return []
        return [n for n in names if _queue_of(n) == queue]

    def _purge(self, queue):
        count = 0
        for name in self._matching(queue):
            try:
                os.unlink(os.path.join(self.data_folder_in, name))
                count += 1
            except FileNotFoundError:
                pass  # claimed by a consumer meanwhile
        self._ready.pop(queue, None)
        return count

    def _size(self, queue):
        return len(self._matching(queue))

    # -- exchange tables (control folder) ------------------------------------

    @staticmethod
    def _is_valid_exchange_name(exchange):
        if not isinstance(exchange, str):
            return False
        if exchange == "":
            return True
        return bool(EXCHANGE_NAME_RE.match(exchange)) and bool(
            exchange.strip("."))

    def _exchange_file(self, exchange):
        if not self._is_valid_exchange_name(exchange):
            raise ChannelError(f"Invalid exchange name: {exchange!r}")
        return self.control_folder / f"{exchange}.exchange"

    def _read_table(self, file):
        """Bindings in *file*; None if missing, [] (logged) if corrupt."""
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        try:
            return [exchange_queue_t(*q) for q in loads(bytes_to_str(raw))]
        except Exception as exc:
            logger.error("Corrupt exchange table %s (%r); ignoring it",
                         file, exc)
            return []

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        table = self._read_table(file)
        if table is None:
            # Missing file (e.g. control folder wiped while running): fall
            # back to the bindings this process declared, as kombu's memory
            # transport would, instead of silently dropping the message.
            try:
                table = [exchange_queue_t(*m) for m in
                         self.state.exchanges[exchange].get("table", [])]
            except KeyError:
                table = []
            if table:
                logger.warning("Exchange table %s is missing; routing with "
                               "this process's own bindings", file)
        return table

    def _update_table(self, exchange, update):
        """Locked read-modify-write of an exchange table, atomic replace."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        lock_path = self.control_folder / f".{file.name}.lock"
        try:
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT
                              | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise ChannelError(f"Cannot open {lock_path}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            queues = self._read_table(file) or []
            new = update(list(queues))
            if new is not None and new != queues:
                atomic_write(os.fspath(self.control_folder), file.name,
                             str_to_bytes(dumps(new)), fsync=self.fsync,
                             fsync_directory=self.fsync_directory)
        except OSError as exc:
            raise ChannelError(f"Cannot update {file}: {exc}") from exc
        finally:
            os.close(lock_fd)  # releases the flock

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        val = exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def add(queues):
            if val not in queues:
                queues.insert(0, val)
            return queues
        self._update_table(exchange, add)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        super()._delete(queue, exchange, routing_key, pattern, *args,
                        **kwargs)
        val = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if not self._exchange_file(exchange).exists():
            return

        def remove(queues):
            return [q for q in queues if q != val]
        self._update_table(exchange, remove)

    # -- lifecycle ---------------------------------------------------------

    def close(self):
        super().close()  # restores unacked messages through _restore
        try:
            os.rmdir(self.owner_folder)  # only if empty
        except OSError:
            pass


class Transport(virtual.Transport):
    """Safe filesystem transport (see module docstring)."""

    Channel = Channel

    implements = virtual.Transport.implements.extend(
        asynchronous=False,
        exchange_type=frozenset(["direct", "topic", "fanout"]),
    )

    #: In-process cache of declared exchanges/bindings, one per control
    #: folder (kombu's transport shares one per process, so a second
    #: Connection with another control_folder would skip writing bindings).
    _states = {}
    default_port = 0
    # Celery checks driver_type (gossip/mingle are not used on 'filesystem')
    driver_type = "filesystem"
    driver_name = "filesystem"

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        opts = client.transport_options or {}
        key = os.path.abspath(os.fspath(opts.get("control_folder", "control")))
        with _maintenance_lock:
            self.state = self._states.setdefault(key, virtual.BrokerState())

    def driver_version(self):
        return "safe-1"


def _forget_identity_in_child():
    global _identity_lock, _maintenance_lock
    _identity_lock = threading.Lock()
    _maintenance_lock = threading.Lock()
    _identity.clear()
    _last_maintenance.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_identity_in_child)
