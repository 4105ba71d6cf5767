"""Named network namespaces, threads that live in them, and their teardown.

This module owns the namespace syscalls of the kernel backend, done the way iproute2's
``ip netns add``/``del`` do them (``ip/ipnetns.c`` ``netns_add``/``netns_delete``):

* ``/run/netns`` is made a shared mount point (a bind mount of itself), once per boot, so
  that the namespace mounts below it propagate to other mount namespaces;
* ``/run/netns/NAME`` is an empty file onto which ``/proc/self/task/TID/ns/net`` of a thread
  that called ``unshare(CLONE_NEWNET)`` is bind-mounted; that keeps the namespace alive and
  named;
* deleting is ``umount2(MNT_DETACH)`` and ``unlink``; the kernel destroys the namespace and
  its devices (``default_device_exit``) when the last reference goes (threads in it,
  sockets created in it).

:class:`NetnsThread` is a daemon thread that entered one namespace and runs callables there
for other threads: namespace membership is per thread (``setns``/``unshare`` affect only
the calling thread), so sockets for that namespace are made there while the caller's own
thread never moves.  :class:`Namespace` records one namespace of a harness (its thread,
netlink and injection sockets, devices) and releases it in the order that lets the kernel
free it; :func:`collect_failures` and :func:`raise_first` run a teardown that goes on after
a failed step or a Ctrl-C.  :func:`quiet_sysctls` switches IPv6 off in a new namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from tcemu.errors import KernelError

__all__ = [
    "NETNS_RUN_DIR",
    "Namespace",
    "NetnsThread",
    "collect_failures",
    "netlink_socket",
    "quiet_sysctls",
    "raise_first",
    "remove_netns",
]

_T = TypeVar("_T")

CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETNS_RUN_DIR = Path("/run/netns")


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_void_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    return libc


def _os_error(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _share_run_dir(run_dir: Path) -> None:
    """Make ``run_dir`` a shared mount point, as ``ip netns add`` does the first time."""
    run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    libc, target = _libc(), os.fsencode(run_dir)
    if libc.mount(b"none", target, b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if libc.mount(target, target, b"none", MS_BIND | MS_REC, None) != 0:
        raise _os_error(f"bind-mount {run_dir}")
    if libc.mount(b"none", target, b"none", MS_SHARED | MS_REC, None) != 0:
        raise _os_error(f"make {run_dir} shared")


def _enter_new_netns(path: Path) -> None:
    """In the calling thread: unshare a new netns and bind it onto ``path``."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNET) != 0:
        raise _os_error("unshare(CLONE_NEWNET)")
    source = f"/proc/self/task/{threading.get_native_id()}/ns/net"
    if libc.mount(os.fsencode(source), os.fsencode(path), b"none", MS_BIND, None) != 0:
        raise _os_error(f"bind-mount the new netns on {path}")


def remove_netns(path: Path) -> None:
    """Unmount and delete a named namespace (``ip netns del``); absent is fine."""
    _libc().umount2(os.fsencode(path), MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class _Call(Generic[_T]):
    """One callable handed to a NetnsThread, with its outcome."""

    def __init__(self, fn: Callable[[], _T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: _T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as err:  # handed back to the caller
            self.error = err
        finally:
            self.done.set()


class NetnsThread:
    """A daemon thread inside one network namespace that runs callables on request."""

    def __init__(self, name: str, enter: Callable[[], None]) -> None:
        self._queue: queue.SimpleQueue[_Call[object] | None] = queue.SimpleQueue()
        self._started = _Call(enter)
        self._thread = threading.Thread(target=self._main, name=f"netns:{name}", daemon=True)
        self._thread.start()
        self._started.done.wait()
        if self._started.error is not None:
            raise self._started.error

    @classmethod
    def create(cls, path: Path) -> NetnsThread:
        """Create the named namespace ``path`` (under /run/netns) with a thread inside it."""
        try:
            _share_run_dir(path.parent)
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        except OSError as err:
            raise KernelError(f"create netns {path.name!r}: {err.strerror}",
                              errno=err.errno or errno.EIO, missing_feature="netns") from err
        try:
            return cls(path.name, functools.partial(_enter_new_netns, path))
        except OSError as err:
            remove_netns(path)
            feature = "netns" if err.errno in (errno.EINVAL, errno.ENOSYS) else None
            raise KernelError(f"create netns {path.name!r}: {err.strerror}",
                              errno=err.errno or errno.EIO, missing_feature=feature) from err
        except BaseException:
            remove_netns(path)
            raise

    def _main(self) -> None:
        self._started.run()
        if self._started.error is not None:
            return
        while (call := self._queue.get()) is not None:
            call.run()

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` inside the namespace and return its result (or raise its error)."""
        if not self._thread.is_alive():
            raise KernelError(f"{self._thread.name}: thread has ended", errno=errno.ESRCH)
        job = _Call(fn)
        self._queue.put(job)  # type: ignore[arg-type]
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value  # type: ignore[return-value]

    def close(self) -> None:
        """End the thread (its reference on the namespace goes with it)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@dataclass
class Namespace:
    """One namespace of the harness and what it holds."""

    short: str
    name: str
    thread: NetnsThread
    ipr: Any = None  # pyroute2.IPRoute bound to the namespace
    injector: socket.socket | None = None
    devices: list[str] = field(default_factory=list)

    def release(self, step: Callable[[Callable[[], object]], None]) -> None:
        """Close the sockets made in the namespace, end its thread, delete it."""
        if self.injector is not None:
            step(self.injector.close)
        if self.ipr is not None:
            step(self.ipr.close)
        step(self.thread.close)
        step(functools.partial(remove_netns, NETNS_RUN_DIR / self.name))


def collect_failures(failures: list[BaseException]) -> Callable[[Callable[[], object]], None]:
    """A teardown step runner: run the action, keep any failure, go on (after Ctrl-C too)."""

    def step(action: Callable[[], object]) -> None:
        try:
            action()
        except BaseException as err:
            failures.append(err)

    return step


def raise_first(failures: list[BaseException]) -> None:
    """Re-raise the first failure of a teardown (Ctrl-C as itself), if there was one."""
    if not failures:
        return
    first = failures[0]
    if not isinstance(first, Exception):
        raise first  # KeyboardInterrupt/SystemExit, after the teardown finished
    raise KernelError(f"tear down: {len(failures)} step(s) failed: {first}",
                      errno=getattr(first, "errno", None) or errno.EIO) from first


def netlink_socket() -> int:
    """A NETLINK_ROUTE socket in the calling thread's namespace, as a bare fd."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    return sock.detach()


def quiet_sysctls() -> None:
    """No IPv6 in this namespace (so no RS, MLD or DAD frames); devices inherit default."""
    for scope in ("all", "default"):
        path = Path(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6")
        with contextlib.suppress(FileNotFoundError):  # kernel without IPv6
            path.write_text("1")
