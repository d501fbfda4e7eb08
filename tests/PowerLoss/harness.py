#!/usr/bin/python3
"""Power-loss harness for the disk tier: does an Add that returned survive a power cut?

    sudo /usr/bin/python3 tests/PowerLoss/harness.py [--worker PATH] [--only NAME] [--cuts N]

Needs root, the built test worker (dotnet build tests/FileCache.Disk.TestWorker), and Debian's
fuse3 + python3-fusepy (crashfs) and e2fsprogs + xfsprogs (loop devices); .ci/run installs them.
A scenario whose requirement is missing is reported as skipped with the reason.

Scenarios (each checks both invariants every time, see PowerLoss.cs in the worker):
  every-op      crashfs, strict: a crash at every mutating operation of 10 x 100 KB Adds under Flush,
                the cache creating its directory
  torn-none     crashfs, torn crashes over existing entries while they are overwritten, Durability None
  torn-flush    the same under Flush
  large         crashfs, sampled crashes (strict and torn) during 3 x 30 MB Adds under Flush
  mixed         crashfs, sampled crashes during Adds, Deletes, use-time refreshes and trims
  ext4          real ext4 on a loop device: shut down without a journal flush (EXT4_IOC_SHUTDOWN,
                NOLOGFLUSH) at a random moment, unmount, mount (journal replay), check; Flush
  xfs           the same on XFS (XFS_IOC_GOINGDOWN, NOLOGFLUSH)
  ext4-commit1  ext4 mounted with commit=1, Durability None: no torn or corrupt hit
Invariants: no torn or corrupt entry is ever a hit (any durability); with Flush every Add that
returned is still a hit. A census (entry files after the crash, empty ones, rejected ones) is printed
per scenario so a run that never produced a torn file is visible.
"""

import argparse
import fcntl
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32): EXT4_IOC_SHUTDOWN and XFS_IOC_GOINGDOWN
NOLOGFLUSH = 2  # EXT4_GOING_FLAGS_NOLOGFLUSH / XFS_FSOP_GOING_FLAGS_NOLOGFLUSH


class Skip(Exception):
    pass


class Harness:
    def __init__(self, worker, cuts, keep_going=False):
        self.worker = worker
        self.keep_going = keep_going
        self.cuts = cuts
        self.base = tempfile.mkdtemp(prefix="filecache-powerloss-")
        os.chmod(self.base, 0o755)
        self.census = {}

    # --- the worker ----------------------------------------------------------------------------
    def run(self, *args, log=None, timeout=600):
        out = open(log, "w") if log else subprocess.PIPE
        try:
            p = subprocess.run(["dotnet", self.worker, *args], stdout=out, stderr=subprocess.PIPE, text=True, timeout=timeout)
        finally:
            if log:
                out.close()
        return p.returncode, (p.stdout or "") + p.stderr

    def write(self, cache, durability, keys, size, gen, mode, log):
        return self.run("powerloss-write", cache, durability, str(keys), str(size), str(gen), mode, log=log)

    def check(self, scenario, cache, log, durability):
        rc, out = self.run("powerloss-check", cache, log, durability)
        census = next((l for l in out.splitlines() if l.startswith("census ")), "census missing")
        totals = self.census.setdefault(scenario, {"runs": 0})
        totals["runs"] += 1
        for part in census.split()[1:]:
            name, _, value = part.partition("=")
            if value.isdigit():
                totals[name] = totals.get(name, 0) + int(value)
        if rc != 0 or "verdict ok" not in out:
            totals["failed"] = totals.get("failed", 0) + 1
            if not self.keep_going:
                raise AssertionError(f"{scenario}: the check failed after a crash (log {log}):\n{out}")

    # --- crashfs -------------------------------------------------------------------------------
    def crashfs(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            raise Skip("crashfs needs root and /dev/fuse")
        try:
            import importlib.util
            if importlib.util.find_spec("fusepy") is None:
                raise ImportError
        except ImportError:
            raise Skip("crashfs needs Debian's python3-fusepy (apt-get install fuse3 python3-fusepy)")
        return CrashFs(os.path.join(self.base, "crashfs"))

    def every_op(self):
        with self.crashfs() as fs:
            cache, log = fs.mnt + "/cache", os.path.join(self.base, "every-op.log")
            fs.cmd("reset")
            rc, out = self.write(cache, "flush", 10, 100_000, 1, "add", log)
            assert rc == 0, out
            total = int(fs.cmd("count"))
            for k in range(1, total + 2):
                fs.cmd("reset")
                fs.cmd(f"arm {k} strict 0")
                self.write(cache, "flush", 10, 100_000, 1, "add", log)
                if fs.cmd("count") != "crashed":
                    fs.cmd("crash strict 0")  # after the last operation
                fs.cmd("thaw")
                self.check("every-op", cache, log, "flush")
            return f"{total + 1} crash points"

    def torn(self, durability, rounds):
        name = "torn-" + durability
        with self.crashfs() as fs:
            cache, log = fs.mnt + "/cache", os.path.join(self.base, name + ".log")
            fs.cmd("reset")
            self.write(cache, "flush", 10, 100_000, 1, "add", log)
            fs.cmd("arm 1000000000 strict 0")  # counts from here: the overwrite alone
            self.write(cache, durability, 10, 100_000, 2, "add", log)
            total = int(fs.cmd("count"))
            fs.cmd("thaw")
            rng = random.Random(7)
            for r in range(rounds):
                fs.cmd("reset")
                rc, out = self.write(cache, "flush", 10, 100_000, 1, "add", os.path.join(self.base, name + "-first.log"))
                assert rc == 0, out
                fs.cmd("crash strict 0")  # the first generation is durable: a clean reboot
                fs.cmd("thaw")
                fs.cmd(f"arm {rng.randint(1, total)} torn {r}")
                # The log the check reads: both generations (the first completed, the second as far as it got).
                self.write(cache, durability, 10, 100_000, 2, "add", log + ".second")
                if fs.cmd("count") != "crashed":
                    fs.cmd(f"crash torn {r}")
                fs.cmd("thaw")
                with open(log, "w") as both:
                    for part in (os.path.join(self.base, name + "-first.log"), log + ".second"):
                        both.writelines(l for l in open(part) if not l.startswith(("done", "error")))
                self.check(name, cache, log, durability)
            return f"{rounds} torn crashes over {total} operations"

    def large(self, samples):
        with self.crashfs() as fs:
            cache, log = fs.mnt + "/cache", os.path.join(self.base, "large.log")
            fs.cmd("reset")
            rc, out = self.write(cache, "flush", 3, 30_000_000, 1, "add", log)
            assert rc == 0, out
            total = int(fs.cmd("count"))
            rng = random.Random(11)
            for s in range(samples):
                mode = "strict" if s % 2 == 0 else "torn"
                fs.cmd("reset")
                fs.cmd(f"arm {rng.randint(1, total)} {mode} {s}")
                self.write(cache, "flush", 3, 30_000_000, 1, "add", log)
                fs.cmd("thaw")
                self.check("large", cache, log, "flush")
            return f"{samples} crashes over {total} operations"

    def mixed(self, samples):
        with self.crashfs() as fs:
            cache, log = fs.mnt + "/cache", os.path.join(self.base, "mixed.log")
            rng = random.Random(13)
            totals = []
            for s in range(samples):
                fs.cmd("reset")
                rc, out = self.write(cache, "flush", 8, 50_000, 1000 * s, "mixed", log)
                assert rc == 0, out
                total = int(fs.cmd("count"))
                totals.append(total)
                fs.cmd("reset")
                fs.cmd(f"arm {rng.randint(1, total)} {'strict' if s % 2 == 0 else 'torn'} {s}")
                self.write(cache, "flush", 8, 50_000, 1000 * s, "mixed", log)
                if fs.cmd("count") != "crashed":
                    fs.cmd("crash strict 0")
                fs.cmd("thaw")
                self.check("mixed", cache, log, "flush")
            return f"{samples} crashes over about {sum(totals) // len(totals)} operations each"

    # --- real file systems ---------------------------------------------------------------------
    def real(self, name, mkfs, options, durability):
        if os.geteuid() != 0:
            raise Skip("loop devices need root")
        for tool in ("losetup", mkfs[0], "mount", "umount"):
            if shutil.which(tool) is None:
                raise Skip(f"{tool} is missing (apt-get install e2fsprogs xfsprogs util-linux)")
        image = os.path.join(self.base, name + ".img")
        with open(image, "wb") as f:
            f.truncate(512 << 20)
        try:
            device = subprocess.run(["losetup", "-f", "--show", image], capture_output=True, text=True, check=True).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            raise Skip(f"no loop device could be attached ({e})")
        mnt = os.path.join(self.base, name + "-mnt")
        os.makedirs(mnt, exist_ok=True)
        rng = random.Random(hash(name) & 0xFFFF)
        try:
            subprocess.run([*mkfs, device], check=True, capture_output=True)
            for cut in range(self.cuts):
                mount = ["mount", "-o", options, device, mnt] if options else ["mount", device, mnt]
                subprocess.run(mount, check=True)
                cache, log = f"{mnt}/cut-{cut}", os.path.join(self.base, f"{name}-{cut}.log")
                with open(log, "w") as out:
                    writer = subprocess.Popen(["dotnet", self.worker, "powerloss-write", cache, durability, "64", "100000", str(cut * 1_000_000), "forever"],
                                              stdout=out, stderr=subprocess.DEVNULL)
                    deadline = time.time() + 60
                    while time.time() < deadline and open(log).read().count("\nend") < 3:
                        time.sleep(0.05)  # a few Adds returned: the process is up and writing
                    # Under None nothing is durable until the journal commits (commit=1: every second).
                    time.sleep(rng.uniform(0.05, 1.0) if durability == "flush" else rng.uniform(1.5, 4.0))
                    # A power cut stops the writer and the device at one instant. The shutdown ioctl
                    # stops only the device, and a writer still running may see a call succeed after
                    # it (XFS's directory fsync answers 0 once a shutdown has dropped what it would have
                    # forced): freeze the writer first, so that every "end" it printed came before the cut.
                    os.kill(writer.pid, signal.SIGSTOP)
                    while open(f"/proc/{writer.pid}/stat").read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                        time.sleep(0.001)
                    fd = os.open(mnt, os.O_RDONLY)
                    try:
                        fcntl.ioctl(fd, SHUTDOWN, struct.pack("I", NOLOGFLUSH))  # nothing more reaches the device
                    finally:
                        os.close(fd)
                    writer.kill()
                    writer.wait()
                subprocess.run(["umount", mnt], check=True)
                subprocess.run(mount, check=True)  # replays the journal
                try:
                    self.check(name, cache, log, durability)
                finally:
                    subprocess.run(["umount", mnt], check=True)
            return f"{self.cuts} shutdowns"
        finally:
            subprocess.run(["umount", mnt], capture_output=True)
            subprocess.run(["losetup", "-d", device], capture_output=True)
            os.remove(image)

    def close(self):
        shutil.rmtree(self.base, ignore_errors=True)


class CrashFs:
    def __init__(self, mnt):
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        os.chmod(mnt, 0o755)
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "crashfs.py"), mnt], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "mounting"
        deadline = time.time() + 20
        while not os.path.ismount(mnt):
            if time.time() > deadline or self.proc.poll() is not None:
                raise Skip("crashfs did not mount")
            time.sleep(0.05)

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        self.proc.kill()
        self.proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", default=os.path.join(ROOT, "tests/FileCache.Disk.TestWorker/bin/Debug/net10.0/FileCache.Disk.TestWorker.dll"))
    parser.add_argument("--only", action="append", help="run only these scenarios")
    parser.add_argument("--cuts", type=int, default=15, help="shutdowns per real file system (default 15)")
    parser.add_argument("--keep-going", action="store_true", help="count every failing check instead of stopping at the first")
    args = parser.parse_args()
    if not os.path.exists(args.worker):
        sys.exit(f"the test worker is not built: {args.worker} (dotnet build tests/FileCache.Disk.TestWorker)")
    h = Harness(args.worker, args.cuts, args.keep_going)
    scenarios = [
        ("every-op", h.every_op),
        ("torn-none", lambda: h.torn("none", 25)),
        ("torn-flush", lambda: h.torn("flush", 25)),
        ("large", lambda: h.large(6)),
        ("mixed", lambda: h.mixed(12)),
        ("ext4", lambda: h.real("ext4", ["mkfs.ext4", "-q", "-F"], "", "flush")),
        ("xfs", lambda: h.real("xfs", ["mkfs.xfs", "-q", "-f"], "", "flush")),
        ("ext4-commit1", lambda: h.real("ext4-commit1", ["mkfs.ext4", "-q", "-F"], "commit=1", "none")),
    ]
    passed = failed = skipped = 0
    try:
        for name, scenario in scenarios:
            if args.only and name not in args.only:
                continue
            started = time.time()
            try:
                what = scenario()
                c = h.census.get(name, {})
                if c.get("failed", 0):
                    raise AssertionError(f"{c['failed']} of {c['runs']} checks failed; lost returned Adds {c.get('lost', 0)}, corrupt hits {c.get('corrupt', 0)}")
                print(f"PASS {name}: {what} in {time.time() - started:.0f} s; census over {c.get('runs', 0)} checks: "
                      f"entry files {c.get('entryfiles', 0)}, empty {c.get('empty', 0)}, rejected {c.get('rejected', 0)}, "
                      f"hits {c.get('hits', 0)}, corrupt hits {c.get('corrupt', 0)}, returned Adds lost {c.get('lost', 0)}", flush=True)
                passed += 1
            except Skip as e:
                print(f"SKIP {name}: {e}", flush=True)
                skipped += 1
            except AssertionError as e:
                print(f"FAIL {name}: {e}", flush=True)
                failed += 1
    finally:
        h.close()
    print(f"powerloss: {passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
