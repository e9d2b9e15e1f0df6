"""A throwaway single-node SLURM cluster (munged, slurmctld, slurmd) for tests.

Debian's ``slurm-wlm`` and ``munge`` are installed with apt-get when missing (root).
Every daemon runs in the foreground as a child of this process, so it is stopped by
its own PID; the config lives in a temporary folder and is linked at
``/etc/slurm/slurm.conf`` (the plugin's nested ``srun`` drops ``SLURM_CONF``). An
existing ``/etc/slurm/slurm.conf`` or a running cluster is never touched: starting
refuses instead.

Usage::

    with ThrowawaySlurm() as cluster:
        ...  # sbatch, squeue, snakemake --executor slurm
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONF_LINK = Path("/etc/slurm/slurm.conf")
PORTS = (6817, 6818)
PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "sinfo")

SLURM_CONF = """\
ClusterName=ultrabones-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class ClusterUnavailable(RuntimeError):
    """The throwaway cluster cannot run here (the reason is the message)."""


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def unavailable_reason() -> str:
    """Why the cluster cannot start here, or "" when it can."""
    if os.geteuid() != 0:
        return "needs root (starts slurmctld/slurmd and links /etc/slurm/slurm.conf)"
    if CONF_LINK.exists() or CONF_LINK.is_symlink():
        return f"{CONF_LINK} exists: a real SLURM is configured here, not touching it"
    busy = [p for p in PORTS if port_in_use(p)]
    if busy:
        return f"port(s) {busy} in use: a SLURM cluster is already running"
    return ""


def install_packages() -> None:
    """Install slurm-wlm and munge with apt-get when a binary is missing."""
    if all(shutil.which(b) for b in BINARIES):
        return
    if not shutil.which("apt-get"):
        raise ClusterUnavailable(
            "SLURM binaries missing and no apt-get to install them"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *PACKAGES],
    ):
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)


class ThrowawaySlurm:
    """Start munged, slurmctld and slurmd in a temp folder; stop them on exit."""

    def __init__(self, *, cpus: int | None = None, mem_mb: int = 8000):
        self.cpus = cpus or os.cpu_count() or 2
        self.mem_mb = mem_mb
        self.root: Path | None = None
        self.procs: list[subprocess.Popen] = []
        self.made_etc = False
        self.linked = False

    def __enter__(self) -> ThrowawaySlurm:
        reason = unavailable_reason()
        if reason:
            raise ClusterUnavailable(reason)
        install_packages()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ultrabones-slurm-"))
        for sub in ("state", "spool", "munge", "munge-run"):
            (self.root / sub).mkdir()
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "munge", 0o700)
        os.chmod(self.root / "munge-run", 0o755)
        self._start_munge()
        conf = self.root / "slurm.conf"
        conf.write_text(
            SLURM_CONF.format(
                host=socket.gethostname().split(".")[0],
                root=self.root,
                cpus=self.cpus,
                mem_mb=self.mem_mb,
                munge_socket=self.munge_socket,
            )
        )
        self.made_etc = not CONF_LINK.parent.exists()
        CONF_LINK.parent.mkdir(parents=True, exist_ok=True)
        CONF_LINK.symlink_to(conf)
        self.linked = True
        self._spawn(["slurmctld", "-D", "-i"], "slurmctld.out")
        self._spawn(["slurmd", "-D"], "slurmd.out")
        self._wait_idle()

    @property
    def munge_socket(self) -> Path:
        """The munge socket of this cluster."""
        return self.root / "munge-run" / "munge.socket.2"

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        subprocess.run(
            ["mungekey", "--create", "--keyfile", str(key)],
            check=True,
            capture_output=True,
        )
        self._spawn(
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.root / 'munged.pid'}",
                f"--log-file={self.root / 'munged.log'}",
                f"--seed-file={self.root / 'munge.seed'}",
            ],
            "munged.out",
        )
        self._wait(lambda: self.munge_socket.exists(), "munged socket")

    def _spawn(self, cmd: list[str], log: str) -> None:
        out = (self.root / log).open("w")
        self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))

    def _wait(self, ready, what: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                raise ClusterUnavailable(f"{dead} exited; logs in {self.root}")
            if ready():
                return
            time.sleep(0.3)
        raise ClusterUnavailable(f"timed out waiting for {what}; logs in {self.root}")

    def _wait_idle(self) -> None:
        def idle() -> bool:
            out = subprocess.run(
                ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True
            )
            return out.returncode == 0 and out.stdout.strip().startswith("idle")

        self._wait(idle, "an idle node")

    def stop(self) -> None:
        """Stop every daemon started here (by PID), unlink the config, remove temp."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.procs.clear()
        if self.linked:
            CONF_LINK.unlink(missing_ok=True)
            self.linked = False
        if self.made_etc:
            shutil.rmtree(CONF_LINK.parent, ignore_errors=True)
            self.made_etc = False
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
