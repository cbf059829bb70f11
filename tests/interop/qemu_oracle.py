#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Oracle suite: compare `memvirt mtree` byte-for-byte with QEMU 7.2's monitor.

For every (machine, size) one QEMU process is started paused (-S) with a QMP
unix socket; `info mtree`, `info mtree -f`, `info mtree -D` and `info ramblock`
are read through QMP `human-monitor-command`, normalised as described in
docs reference qemu-memory.md §2.5, and compared with the raw output of the
matching `memvirt mtree` invocation.  memvirt must print the normalised form.

With /dev/kvm, QEMU runs with -accel kvm and the flat views are compared with
`memvirt mtree -f --kvm`, whole lines included: the " KVM" suffix QEMU prints
on a range backed by a memslot (kvm_accel_has_memory()) must match memvirt's
memslot listener exactly.  Without /dev/kvm QEMU runs with -accel tcg and
memvirt without --kvm: neither prints markers.

Exit status: 0 all passed, 1 any failure, 77 (meson "skip") if QEMU is absent.
Standard library only.
"""
import argparse
import difflib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# q35 keeps at most 2.75G (2816M) below 4G, pc at most 3.5G (3584M):
# test sizes on both sides of each limit, plus a size that is not a multiple
# of QEMU's 8 KiB RAM alignment.
DEFAULT_SIZES = ("128M,512M,1G,2G,2815M,2816M,2817M,3G,"
                 "3583M,3584M,3585M,4G,8G,1001k")
TIMEOUT = 30.0          # seconds per QEMU process / memvirt invocation
DIFF_LINES = 60         # lines of unified diff printed per mismatch

# (HMP command, extra memvirt arguments, normaliser kind)
COMMANDS = [
    ("info mtree", [], "tree"),
    ("info mtree -f", ["-f"], "flat"),
    ("info mtree -D", ["-D"], "tree"),
    ("info ramblock", ["--ramblock"], "none"),
]
# Extra memvirt arguments per normaliser kind when QEMU runs with KVM: the
# flat views then carry QEMU's " KVM" memslot markers.
KVM_EXTRA = {"flat": ["--kvm"]}


# ----------------------------------------------------------------- normalising
def split_blocks(text):
    """Blocks are separated by blank lines; return them without the blanks."""
    return [b for b in re.split(r"\n[ \t]*\n", text.strip("\n")) if b.strip()]


def normalise_tree(text):
    """`info mtree` / `-D`: AS/memory-region blocks in hash order -> sort."""
    return "".join(b + "\n\n" for b in sorted(split_blocks(text)))


def normalise_flat(text):
    """`info mtree -f`: drop "FlatView #N", sort the views and renumber them
    from 0.  Range lines are kept whole, " KVM" markers included."""
    views = []
    for block in split_blocks(text):
        lines = block.split("\n")[1:]          # drop "FlatView #N"
        views.append("\n".join(lines))
    return "".join("FlatView #%d\n%s\n\n" % (i, v)
                   for i, v in enumerate(sorted(views)))


def normalise(kind, text):
    if kind == "tree":
        return normalise_tree(text)
    if kind == "flat":
        return normalise_flat(text)
    return text


# ------------------------------------------------------------------------ QEMU
def kvm_usable():
    """True if /dev/kvm can be opened read/write."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
        return True
    except OSError:
        return False


class QMP:
    """Minimal line-based QMP client with a global deadline."""

    def __init__(self, path, deadline):
        self.deadline = deadline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""

    def close(self):
        self.sock.close()

    def _readline(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("QMP timed out")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("QMP connection closed by QEMU")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def recv(self):
        """Next message that is not an asynchronous event."""
        while True:
            msg = self._readline()
            if "event" not in msg:
                return msg

    def execute(self, cmd, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        msg = self.recv()
        if "error" in msg:
            raise RuntimeError("QMP %s: %s" % (cmd, msg["error"]))
        return msg["return"]


def run_qemu(qemu, accel, machine, size, tmpdir):
    """Return {hmp command: raw text} from one paused QEMU process."""
    sock = os.path.join(tmpdir, "qmp-%s-%s.sock" % (machine, size))
    errlog = os.path.join(tmpdir, "qemu-%s-%s.err" % (machine, size))
    argv = [qemu, "-M", machine, "-m", size, "-nodefaults", "-S",
            "-display", "none", "-accel", accel,
            "-qmp", "unix:%s,server=on,wait=off" % sock]
    deadline = time.monotonic() + TIMEOUT
    with open(errlog, "w+") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        qmp = None
        try:
            # Wait for the listener: QEMU binds the socket (the file
            # appears) before it listens, so a connect in between is
            # refused; retry until it is accepted.
            while qmp is None:
                if proc.poll() is not None:
                    raise RuntimeError("QEMU exited with status %d"
                                       % proc.returncode)
                if time.monotonic() > deadline:
                    raise TimeoutError("QMP socket never accepted")
                try:
                    qmp = QMP(sock, deadline)
                except (FileNotFoundError, ConnectionRefusedError):
                    time.sleep(0.01)
            if "QMP" not in qmp.recv():
                raise RuntimeError("no QMP greeting")
            qmp.execute("qmp_capabilities")
            out = {}
            for hmp, _, _ in COMMANDS:
                text = qmp.execute("human-monitor-command", **{"command-line": hmp})
                # HMP output inside QMP uses "\r\n" in 7.2: a transport
                # artefact (x-query-ramblock returns "\n"), so drop the "\r".
                out[hmp] = text.replace("\r\n", "\n")
            qmp.execute("quit")
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            return out
        except Exception as e:
            err.seek(0)
            stderr = err.read().strip()
            raise RuntimeError("%s: %s%s" % (" ".join(argv), e,
                                             ("\n" + stderr) if stderr else ""))
        finally:
            if qmp:
                qmp.close()
            if proc.poll() is None:                 # any error: kill QEMU
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------- memvirt
def run_memvirt(memvirt, machine, size, extra):
    argv = [memvirt, "mtree", "--machine", machine, "-m", size] + extra
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "%s: %s" % (" ".join(argv), e)
    if r.returncode != 0:
        return None, "%s: exit status %d\n%s" % (
            " ".join(argv), r.returncode, r.stderr.decode(errors="replace"))
    return r.stdout.decode(errors="replace"), None


# ------------------------------------------------------------------------ main
def save(keep, machine, size, hmp, texts):
    os.makedirs(keep, exist_ok=True)
    stem = "%s-%s-%s" % (machine, size, hmp.replace("info ", "").replace(" ", ""))
    for suffix, text in texts.items():
        with open(os.path.join(keep, stem + suffix), "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memvirt", required=True, help="memvirt executable")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--machines", default="pc,q35")
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    ap.add_argument("--keep", metavar="DIR", help="save mismatching texts here")
    args = ap.parse_args()

    qemu = shutil.which(args.qemu)
    if not qemu:
        print("SKIP: %s not found" % args.qemu)
        return 77
    accel = "kvm"
    if not kvm_usable():
        accel = "tcg"
        print("note: /dev/kvm is not usable, running QEMU with -accel tcg "
              "and memvirt without --kvm (no KVM markers on either side)")
    sys.stdout.flush()

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="qemu-oracle-") as tmpdir:
        for machine in filter(None, args.machines.split(",")):
            for size in filter(None, args.sizes.split(",")):
                try:
                    qout, qerr = run_qemu(qemu, accel, machine, size, tmpdir), None
                except RuntimeError as e:
                    qout, qerr = None, str(e)
                for hmp, extra, kind in COMMANDS:
                    label = "%s %s %s" % (machine, size, hmp)
                    if accel == "kvm":
                        extra = extra + KVM_EXTRA.get(kind, [])
                    mout, merr = (None, None) if qerr else \
                        run_memvirt(args.memvirt, machine, size, extra)
                    if qerr or merr:                # report a QEMU error once
                        failed += 1
                        print("FAIL %s\n  %s" % (label, (qerr or merr).replace(
                            "\n", "\n  ").rstrip()))
                        qerr = qerr and "(QEMU failed, see above)"
                        continue
                    want = normalise(kind, qout[hmp])
                    if mout == want:
                        passed += 1
                        print("ok %s" % label)
                        continue
                    failed += 1
                    print("FAIL %s" % label)
                    diff = list(difflib.unified_diff(
                        want.splitlines(True), mout.splitlines(True),
                        "qemu %s" % label, "memvirt %s" % label))
                    for line in diff[:DIFF_LINES]:
                        sys.stdout.write(line if line.endswith("\n") else
                                         line + "\n\\ No newline at end of file\n")
                    if len(diff) > DIFF_LINES:
                        print("... (%d more diff lines)" % (len(diff) - DIFF_LINES))
                    if args.keep:
                        # .qemu.raw: QEMU text before normalisation (CRs dropped)
                        save(args.keep, machine, size, hmp,
                             {".qemu": want, ".qemu.raw": qout[hmp],
                              ".memvirt": mout})
                sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
