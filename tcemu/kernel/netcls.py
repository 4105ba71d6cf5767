"""net_cls class ids of sending tasks on the kernel: a private cgroup v1 mount.

``bpf_get_cgroup_classid`` at tc egress (``task_get_classid`` in include/net/cls_cgroup.h)
returns the net_cls class id of the sending task, or of the socket's owner when the
packet is sent from softirq context; the socket takes the class id of the task that
created it (``sock_update_classid``).  :class:`NetCls` makes that happen for a frame: it
mounts the net_cls controller's v1 hierarchy on a fresh temporary directory (never over
``/sys/fs/cgroup``), creates one child cgroup per class id with ``net_cls.classid`` set,
and :meth:`NetCls.send` moves the calling thread into it, creates a packet socket there,
transmits, and moves the thread back to the root cgroup.  :meth:`NetCls.close` removes
the children and unmounts (the hierarchy itself goes when no mount and no child is left).

Mirrors ``net/core/netclassid_cgroup.c`` (``write_classid``) and the cgroup v1 ``tasks``
file of ``kernel/cgroup/cgroup-v1.c``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from tcemu.errors import KernelError
from tcemu.kernel.inject import open_injector, transmit

__all__ = ["NetCls"]

_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


class NetCls:
    """net_cls cgroups of one run (see the module docstring)."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._children: dict[int, Path] = {}
        self._tag = f"tcemu-{os.getpid()}-{secrets.token_hex(2)}"

    def _mount(self) -> Path:
        if self._root is not None:
            return self._root
        root = Path(tempfile.mkdtemp(prefix="tcemu-netcls-"))
        if _libc().mount(b"cgroup", os.fsencode(root), b"cgroup", 0, b"net_cls") != 0:
            err = ctypes.get_errno()
            root.rmdir()
            raise KernelError(f"mount the net_cls cgroup v1 hierarchy: {os.strerror(err)}",
                              errno=err, missing_feature="cgroup/net_cls")
        self._root = root
        return root

    def cgroup(self, classid: int) -> Path:
        """The child cgroup whose tasks have ``classid`` (created on first use)."""
        if classid not in self._children:
            child = self._mount() / f"{self._tag}-{classid:x}"
            child.mkdir()
            self._children[classid] = child
            (child / "net_cls.classid").write_text(str(classid))
        return self._children[classid]

    def send(self, dev: str, frame: bytes, classid: int) -> None:
        """Transmit ``frame`` out of ``dev`` as a task of ``classid``.  Call it in the
        thread of the device's namespace (:meth:`KernelNet.run_in`)."""
        child = self.cgroup(classid)
        assert self._root is not None
        tid = str(threading.get_native_id())
        (child / "tasks").write_text(tid)
        try:
            sock = open_injector()
            try:
                transmit(sock, dev, frame)
            finally:
                sock.close()
        finally:
            (self._root / "tasks").write_text(tid)

    def close(self) -> None:
        """Remove the child cgroups and the mount; every step runs."""
        for child in self._children.values():
            with contextlib.suppress(OSError):
                child.rmdir()
        self._children.clear()
        if self._root is not None:
            if _libc().umount2(os.fsencode(self._root), _MNT_DETACH) != 0:
                err = ctypes.get_errno()
                if err != errno.EINVAL:
                    shutil.rmtree(self._root, ignore_errors=True)
            with contextlib.suppress(OSError):
                self._root.rmdir()
            self._root = None
