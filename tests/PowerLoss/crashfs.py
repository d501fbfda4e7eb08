#!/usr/bin/env python3
"""crashfs: an in-memory FUSE file system that remembers what a power cut would keep.

Usage: crashfs.py MOUNTPOINT   (as root; needs Debian's python3-fusepy and /dev/fuse)

It keeps, for every file, its bytes as of its last fsync, and for every directory, its names as of
its last directory fsync (POSIX's rule: a new name, a rename or an unlink is durable only once the
directory is synced). A crash replaces the live state with what was durable ("strict"), or with a
random mix of the durable and the live state ("torn": per file the durable bytes, the live bytes, the
durable bytes padded with zeros to the live length, or a short prefix of the live bytes; per name the
durable or the live entry). Whatever was not reachable by durable names is gone. After a crash every
operation fails with EIO until "thaw", like a machine that lost power, so the writer can return no
further Add.

Commands, one per line on standard input, each answered with one line on standard output:
  arm K MODE SEED   crash before the K-th mutating operation from now (1-based); MODE strict|torn
  crash MODE SEED   crash now
  thaw              accept operations again (the machine rebooted)
  count             mutating operations since the last arm/reset; "crashed" when crashed
  reset             an empty file system
Mutating operations: create, mkdir, write, truncate, fsync, fsyncdir, rename, unlink, rmdir, chmod,
chown, utimens, symlink.
"""

import errno
import os
import random
import stat
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations


class Node:
    def __init__(self, ino, mode):
        self.ino = ino
        self.mode = mode
        self.data = bytearray()  # files: live bytes
        self.durable = bytearray()  # files: bytes as of the last fsync
        self.entries = {}  # directories: name -> ino, live
        self.durable_entries = {}  # directories: name -> ino, as of the last fsync
        self.target = ""  # symbolic links
        self.uid = 0
        self.gid = 0
        self.atime = self.mtime = self.ctime = time.time()

    @property
    def is_dir(self):
        return stat.S_ISDIR(self.mode)


class CrashFs(Operations):
    use_ns = False

    def __init__(self):
        self.mutex = threading.RLock()
        self.reset()

    # --- state -------------------------------------------------------------------------------
    def reset(self):
        with self.mutex:
            self.nodes = {1: Node(1, stat.S_IFDIR | 0o755)}
            self.next_ino = 2
            self.ops = 0
            self.arm_at = None
            self.arm_mode = ("strict", 0)
            self.crashed = False

    def crash(self, mode, seed):
        rng = random.Random(seed)
        for node in self.nodes.values():
            if node.is_dir:
                if mode == "torn":
                    merged = {}
                    for name in set(node.entries) | set(node.durable_entries):
                        pick = node.entries.get(name) if rng.random() < 0.5 else node.durable_entries.get(name)
                        if pick is not None:
                            merged[name] = pick
                    node.entries = merged
                else:
                    node.entries = dict(node.durable_entries)
                node.durable_entries = dict(node.entries)
            elif stat.S_ISREG(node.mode):
                if mode == "torn" and node.data != node.durable:
                    choice = rng.randrange(4)
                    if choice == 0:
                        node.data = bytearray(node.durable)
                    elif choice == 1:
                        pass  # everything written reached the device
                    elif choice == 2:
                        node.data = bytearray(node.durable) + bytearray(max(0, len(node.data) - len(node.durable)))
                    else:
                        node.data = bytearray(node.data[: rng.randrange(len(node.data) + 1)])
                else:
                    node.data = bytearray(node.durable)
                node.durable = bytearray(node.data)
        # Only what durable names reach survives.
        alive, todo = set(), [1]
        while todo:
            ino = todo.pop()
            if ino in alive or ino not in self.nodes:
                continue
            alive.add(ino)
            todo.extend(self.nodes[ino].entries.values())
        for node in self.nodes.values():
            if node.is_dir:
                node.entries = {n: i for n, i in node.entries.items() if i in self.nodes}
                node.durable_entries = dict(node.entries)
        self.nodes = {ino: n for ino, n in self.nodes.items() if ino in alive}
        self.crashed = True

    def mutate(self):
        """Called first by every mutating operation: counts it, crashes when armed, refuses after a crash."""
        if self.crashed:
            raise FuseOSError(errno.EIO)
        self.ops += 1
        if self.arm_at is not None and self.ops >= self.arm_at:
            self.crash(*self.arm_mode)
            raise FuseOSError(errno.EIO)

    def resolve(self, path):
        node = self.nodes[1]
        for part in [p for p in path.split("/") if p]:
            if not node.is_dir or part not in node.entries:
                raise FuseOSError(errno.ENOENT)
            node = self.nodes[node.entries[part]]
        return node

    def parent_of(self, path):
        head, name = os.path.split(path.rstrip("/"))
        parent = self.resolve(head or "/")
        if not parent.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return parent, name

    def node_of(self, path, fh):
        if fh:
            node = self.nodes.get(fh)
            if node is not None:
                return node
        if path is None:
            raise FuseOSError(errno.EBADF)
        return self.resolve(path)

    def new_node(self, mode):
        node = Node(self.next_ino, mode)
        self.next_ino += 1
        self.nodes[node.ino] = node
        return node

    # --- metadata ----------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        with self.mutex:
            node = self.node_of(path, fh)
            nlink = 2 if node.is_dir else sum(
                1 for n in self.nodes.values() if n.is_dir for i in n.entries.values() if i == node.ino) or 1
            size = len(node.data) if stat.S_ISREG(node.mode) else len(node.target) if stat.S_ISLNK(node.mode) else 4096
            return dict(st_ino=node.ino, st_mode=node.mode, st_nlink=nlink, st_uid=node.uid, st_gid=node.gid,
                        st_size=size, st_atime=node.atime, st_mtime=node.mtime, st_ctime=node.ctime,
                        st_blocks=(size + 511) // 512, st_blksize=4096)

    def access(self, path, amode):
        with self.mutex:
            self.resolve(path)
            return 0

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=1 << 20, f_bfree=1 << 19, f_bavail=1 << 19,
                    f_files=1 << 20, f_ffree=1 << 19, f_namemax=255)

    def chmod(self, path, mode):
        with self.mutex:
            self.mutate()
            node = self.resolve(path)
            node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
            node.ctime = time.time()
            return 0

    def chown(self, path, uid, gid):
        with self.mutex:
            self.mutate()
            node = self.resolve(path)
            if uid != -1 and uid != 0xFFFFFFFF:
                node.uid = uid
            if gid != -1 and gid != 0xFFFFFFFF:
                node.gid = gid
            node.ctime = time.time()
            return 0

    def utimens(self, path, times=None):
        with self.mutex:
            self.mutate()
            node = self.resolve(path)
            now = time.time()
            node.atime, node.mtime = times if times else (now, now)
            node.ctime = now
            return 0

    # --- directories -------------------------------------------------------------------------
    def mkdir(self, path, mode):
        with self.mutex:
            self.mutate()
            parent, name = self.parent_of(path)
            if name in parent.entries:
                raise FuseOSError(errno.EEXIST)
            node = self.new_node(stat.S_IFDIR | (mode & 0o7777))
            parent.entries[name] = node.ino
            parent.mtime = parent.ctime = time.time()
            return 0

    def rmdir(self, path):
        with self.mutex:
            self.mutate()
            parent, name = self.parent_of(path)
            node = self.resolve(path)
            if node.entries:
                raise FuseOSError(errno.ENOTEMPTY)
            del parent.entries[name]
            return 0

    def opendir(self, path):
        with self.mutex:
            return self.resolve(path).ino

    def readdir(self, path, fh):
        with self.mutex:
            node = self.node_of(path, fh)
            return [".", ".."] + list(node.entries)

    def releasedir(self, path, fh):
        return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self.mutate()
            node = self.node_of(path, fh)
            node.durable_entries = dict(node.entries)
            return 0

    # --- files -------------------------------------------------------------------------------
    def create(self, path, mode, fi=None):
        with self.mutex:
            self.mutate()
            parent, name = self.parent_of(path)
            if name in parent.entries:
                raise FuseOSError(errno.EEXIST)
            node = self.new_node(stat.S_IFREG | (mode & 0o7777))
            parent.entries[name] = node.ino
            parent.mtime = parent.ctime = time.time()
            return node.ino

    def open(self, path, flags):
        with self.mutex:
            node = self.resolve(path)
            if stat.S_ISLNK(node.mode) and flags & os.O_NOFOLLOW:
                raise FuseOSError(errno.ELOOP)
            return node.ino

    def read(self, path, size, offset, fh):
        with self.mutex:
            node = self.node_of(path, fh)
            return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            self.mutate()
            node = self.node_of(path, fh)
            end = offset + len(data)
            if len(node.data) < offset:
                node.data.extend(bytearray(offset - len(node.data)))
            node.data[offset:end] = data
            node.mtime = node.ctime = time.time()
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self.mutate()
            node = self.node_of(path, fh)
            if length < len(node.data):
                del node.data[length:]
            else:
                node.data.extend(bytearray(length - len(node.data)))
            node.mtime = node.ctime = time.time()
            return 0

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self.mutate()
            node = self.node_of(path, fh)
            node.durable = bytearray(node.data)
            return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def rename(self, old, new):
        with self.mutex:
            self.mutate()
            old_parent, old_name = self.parent_of(old)
            new_parent, new_name = self.parent_of(new)
            if old_name not in old_parent.entries:
                raise FuseOSError(errno.ENOENT)
            ino = old_parent.entries.pop(old_name)
            new_parent.entries[new_name] = ino
            now = time.time()
            old_parent.mtime = old_parent.ctime = new_parent.mtime = new_parent.ctime = now
            return 0

    def unlink(self, path):
        with self.mutex:
            self.mutate()
            parent, name = self.parent_of(path)
            if name not in parent.entries:
                raise FuseOSError(errno.ENOENT)
            del parent.entries[name]
            parent.mtime = parent.ctime = time.time()
            return 0

    def symlink(self, target, source):
        with self.mutex:
            self.mutate()
            parent, name = self.parent_of(target)
            node = self.new_node(stat.S_IFLNK | 0o777)
            node.target = source
            parent.entries[name] = node.ino
            return 0

    def readlink(self, path):
        with self.mutex:
            return self.resolve(path).target


def control(fs):
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        with fs.mutex:
            if words[0] == "arm":
                fs.ops, fs.arm_at, fs.arm_mode, fs.crashed = 0, int(words[1]), (words[2], int(words[3])), False
                answer = "ok"
            elif words[0] == "crash":
                fs.crash(words[1], int(words[2]))
                answer = "ok"
            elif words[0] == "thaw":
                fs.crashed, fs.arm_at = False, None
                answer = "ok"
            elif words[0] == "count":
                answer = "crashed" if fs.crashed else str(fs.ops)
            elif words[0] == "reset":
                fs.reset()
                answer = "ok"
            else:
                answer = "unknown command"
        print(answer, flush=True)
    os._exit(0)  # standard input closed: the harness is gone


def main():
    fs = CrashFs()
    threading.Thread(target=control, args=(fs,), daemon=True).start()
    print("mounting", flush=True)
    FUSE(fs, sys.argv[1], foreground=True, nothreads=False, use_ino=True, direct_io=True, hard_remove=True,
         attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="crashfs", subtype="crashfs")


if __name__ == "__main__":
    main()
