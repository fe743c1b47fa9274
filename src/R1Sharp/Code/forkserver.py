import sys
# What a fresh `python3 -E -s main.py` has imported at this point: a run's child drops every module imported after it.
_BASELINE = frozenset(sys.modules)

# R1Sharp's Python fork server (PythonForkServer.cs has the design and what isolation rests on). It runs as root inside
# a long-lived bubblewrap sandbox with few capabilities, and per program forks
#   A (root):     new mount, PID and IPC namespaces; fresh tmpfs on /sandbox and /tmp; writes main.py
#   B (pid 1):    the new PID namespace's init; mounts its /proc, drops to the run's uid, reaps; exits with C's status
#   C (pid 2):    the run's pipes, rlimits, the run's uid; becomes the program in a clean interpreter
# When B exits the kernel kills every process left in its namespace; the server then kills anything of the run still
# alive in its own namespace (only bubblewrap's init and the server may remain). Frames to the host: type byte,
# uint32 length, payload (little-endian). Host → server: a request (b"R1RQ" header, source, stdin), or b"K" (kill).
import os, struct, select, ctypes, resource

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
_MNT_DETACH = 2
_MS_RDONLY, _MS_REMOUNT, _MS_BIND = 1, 32, 4096
_PR_SET_DUMPABLE, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 4, 24, 38
_HEADER = struct.Struct("<4sQI8QII")
_WORKDIR = "/sandbox"
_MAIN = _WORKDIR + "/main.py"


def _check(result, what):
    if result != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def _prctl(option, arg):
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl %d" % option)


def _mount(source, target, fstype, flags, data):
    enc = lambda s: None if s is None else s.encode()
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), "mount " + target)


# Nobody may ptrace this process or open its /proc/PID/mem (the children run under other uids as well).
_prctl(_PR_SET_DUMPABLE, 0)
_CAP_LAST = int(open("/proc/sys/kernel/cap_last_cap").read())
_SELF = os.getpid()
_CTRL_IN, _CTRL_OUT = os.dup(0), os.dup(1)
_null = os.open("/dev/null", os.O_RDWR)
os.dup2(_null, 0)
os.dup2(_null, 1)
os.close(_null)


def _send(kind, payload=b""):
    data = struct.pack("<cI", kind, len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(_CTRL_OUT, view):]


def _read_exact(n):
    chunks = []
    while n > 0:
        b = os.read(_CTRL_IN, n)
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _alive_others():
    """Processes in the server's PID namespace other than bubblewrap's init (1) and the server, not yet dead."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in (1, _SELF):
            continue
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            found.append(pid)
    return found


def _sweep():
    """SIGKILL everything of the run, repeated until nothing is left (a fork racing one round is caught by the next)."""
    for _ in range(1000):
        others = _alive_others()
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        select.select([], [], [], 0.001)
    raise RuntimeError("processes of a run survived 1000 sweeps")


def _status_code(status):
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


_status_w = -1  # in a run's A, B and C until the program starts: where a set-up failure is reported (not the run's stderr)


def _die(message, code):
    try:
        os.write(_status_w if _status_w >= 0 else 2, message.encode()[:4000])
    finally:
        os._exit(code)


def _drop_privileges(uid):
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    for cap in range(_CAP_LAST + 1):
        _prctl(_PR_CAPBSET_DROP, cap)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to a non-zero uid: the permitted, effective and ambient sets are cleared
    # ... and the inheritable set too, as setpriv --inh-caps=-all does on the per-run path (capset, _LINUX_CAPABILITY_VERSION_3).
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("uid not changed")


def _child_a(req, source, pipes):
    """Root, in the run's own mount, PID and IPC namespaces. Returns only in C, with the program to run."""
    in_r, in_w, out_r, out_w, err_r, err_w, status_r, _ = pipes
    for fd in (_CTRL_IN, _CTRL_OUT, in_w, out_r, err_r, status_r):
        os.close(fd)
    try:
        _check(_libc.unshare(ctypes.c_int(_CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC)), "unshare")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
        size = "size=%d" % req["workdir"]
        # The server's own /sandbox and /tmp are detached, not covered, so that the run's mount table is the per-run path's.
        for target in (_WORKDIR, "/tmp"):
            _check(_libc.umount2(target.encode(), ctypes.c_int(_MNT_DETACH)), "umount " + target)
        _mount("tmpfs", _WORKDIR, "tmpfs", _MS_NOSUID | _MS_NODEV, size + ",mode=0777")
        _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, size + ",mode=1777")
        fd = os.open(_MAIN, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        view = memoryview(source)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        # Read-only over itself, as the per-run path binds it: the program can neither change nor remove its source.
        _mount(_MAIN, _MAIN, None, _MS_BIND, None)
        _mount(None, _MAIN, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None)
        b = os.fork()
    except BaseException as e:
        _die("run set-up failed: %r" % (e,), 125)
    if b != 0:
        for fd in (in_r, out_w, err_w, _status_w):
            os.close(fd)
        try:
            _, status = os.waitpid(b, 0)
            os._exit(_status_code(status))
        except BaseException as e:
            _die("waiting for the run failed: %r" % (e,), 125)
    return _child_b(req, pipes)


def _child_b(req, pipes):
    """pid 1 of the run's PID namespace: the run's /proc, the run's uid, then C; reaps until C has exited."""
    in_r, _, _, out_w, _, err_w, _, _ = pipes
    try:
        _check(_libc.umount2(b"/proc", ctypes.c_int(_MNT_DETACH)), "umount /proc")
        _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
        # As bubblewrap's --proc does: the parts of /proc that configure the machine, read-only over themselves.
        for sub in ("sys", "sysrq-trigger", "irq", "bus"):
            path = "/proc/" + sub
            if os.path.exists(path):
                _mount(path, path, None, _MS_BIND | _MS_REC, None)
                _mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
        os.setsid()  # the run's session and process group are its init's (1), as bubblewrap's --new-session makes them
        _drop_privileges(req["uid"])
        _prctl(_PR_SET_DUMPABLE, 0)  # the run's init: the program (same uid) may not ptrace it or open its memory
        c = os.fork()
    except BaseException as e:
        _die("run set-up failed: %r" % (e,), 125)
    if c == 0:
        return _child_c(req, pipes)
    for fd in (in_r, out_w, err_w, _status_w):
        os.close(fd)
    try:
        while True:
            pid, status = os.waitpid(-1, 0)
            if pid == c:
                break
    except BaseException:
        status = 125 << 8
    os._exit(_status_code(status))  # as init: the kernel now kills whatever the program left running


def _child_c(req, pipes):
    in_r, _, _, out_w, _, err_w, _, _ = pipes
    try:
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.chdir(_WORKDIR)
        for which, value in ((resource.RLIMIT_CPU, (req["cpu_soft"], req["cpu_hard"])), (resource.RLIMIT_AS, (req["as"], req["as"])),
                             (resource.RLIMIT_DATA, (req["data"], req["data"])), (resource.RLIMIT_NPROC, (req["nproc"], req["nproc"])),
                             (resource.RLIMIT_FSIZE, (req["fsize"], req["fsize"])), (resource.RLIMIT_NOFILE, (req["nofile"], req["nofile"])),
                             (resource.RLIMIT_CORE, (0, 0))):
            resource.setrlimit(which, value)
        # A fresh interpreter started by exec is dumpable: so is the program (it is not the server, and runs as the run's uid).
        _prctl(_PR_SET_DUMPABLE, 1)
    except BaseException as e:
        _die("run set-up failed: %r" % (e,), 125)
    os.closerange(3, 1 << 16)  # the status pipe included: from here on it is the program
    return True


def _serve_one(req, source, stdin):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    pipes = (in_r, in_w, out_r, out_w, err_r, err_w, status_r, status_w)
    a = os.fork()
    if a == 0:
        global _status_w
        _status_w = status_w
        try:
            return _child_a(req, source, pipes)
        except BaseException as e:  # never back into the server's loop from a child
            _die("run set-up failed: %r" % (e,), 125)
    for fd in (in_r, out_w, err_w, status_w):
        os.close(fd)
    _send(b"S", struct.pack("<Q", req["seq"]))
    os.set_blocking(in_w, False)
    pending = memoryview(stdin)
    if not pending:
        os.close(in_w)
        in_w = -1
    try:
        pidfd = os.pidfd_open(a)
    except (AttributeError, OSError):
        pidfd = -1
    outputs = {out_r: b"O", err_r: b"E"}
    status = None
    while status is None or outputs:
        readers = list(outputs) + [_CTRL_IN] + ([pidfd] if pidfd >= 0 and status is None else [])
        writers = [in_w] if in_w >= 0 else []
        timeout = None if pidfd >= 0 or status is not None else 0.002
        r, w, _ = select.select(readers, writers, [], timeout)
        if status is None and (pidfd in r or pidfd < 0):
            done, st = os.waitpid(a, os.WNOHANG)
            if done == a:
                status = _status_code(st)
                _sweep()  # normally nothing is left: B's exit took the run's namespace down
        if _CTRL_IN in r:
            b = os.read(_CTRL_IN, 1)
            if not b:
                _sweep()
                os._exit(0)  # the host is gone
            if b == b"K":
                _sweep()
        for fd in [fd for fd in r if fd in outputs]:
            data = os.read(fd, 65536)
            if data:
                _send(outputs[fd], data)
            else:
                os.close(fd)
                del outputs[fd]
        if in_w in w:
            try:
                pending = pending[os.write(in_w, pending[:65536]):]
            except (BrokenPipeError, BlockingIOError):
                if not isinstance(sys.exc_info()[1], BlockingIOError):
                    pending = pending[:0]
            if not pending:
                os.close(in_w)
                in_w = -1
    if in_w >= 0:
        os.close(in_w)
    if pidfd >= 0:
        os.close(pidfd)
    _sweep()
    failure = b"".join(iter(lambda: os.read(status_r, 4096), b""))  # every writer is gone: EOF
    os.close(status_r)
    if failure:
        _send(b"F", failure)
    _send(b"X", struct.pack("<Qi", req["seq"], status))
    return None


def _serve():
    _send(b"R", struct.pack("<I", _SELF))
    names = ("seq", "uid", "cpu_soft", "cpu_hard", "as", "data", "nproc", "fsize", "nofile", "workdir")
    while True:
        try:
            first = _read_exact(1)
            while first == b"K":  # a kill that arrived after its run had ended
                first = _read_exact(1)
            fields = _HEADER.unpack(first + _read_exact(_HEADER.size - 1))
        except EOFError:
            os._exit(0)
        if fields[0] != b"R1RQ":
            _die("malformed request", 3)
        req = dict(zip(names, fields[1:11]))
        source = _read_exact(fields[11])
        stdin = _read_exact(fields[12])
        if _serve_one(req, source, stdin):
            return source


def _program(source):
    """In C: make the interpreter look like a fresh `python3 -E -s main.py` in /sandbox, then run the program."""
    main = type(sys)("__main__")
    main.__file__ = _MAIN
    main.__cached__ = None
    main.__loader__ = sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", _MAIN)
    main.__annotations__ = {}
    main.__builtins__ = sys.modules["builtins"]
    sys.modules["__main__"] = main
    for name in [n for n in sys.modules if n not in _BASELINE]:
        del sys.modules[name]
    sys.argv = ["main.py"]
    sys.orig_argv = [sys.orig_argv[0], "-E", "-s", "main.py"]
    sys.path[0] = _WORKDIR
    sys.last_type = sys.last_value = sys.last_traceback = None
    del sys.last_type, sys.last_value, sys.last_traceback
    globals_ = main.__dict__
    try:
        exec(compile(source, _MAIN, "exec"), globals_)
    except SystemExit:
        raise
    except BaseException as e:
        # The traceback as a fresh interpreter prints it: from the program's first frame on, not ours.
        e.__traceback__ = e.__traceback__.tb_next if e.__traceback__ is not None else None
        sys.excepthook(type(e), e, e.__traceback__)
        if isinstance(e, KeyboardInterrupt):
            import signal
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return 1
    return 0


_source = _serve()
del _serve
_code = _program(_source)
if _code:
    raise SystemExit(_code)
