"""A one-node SLURM cluster on localhost for the cluster tests: Debian's munge, slurmctld
and slurmd started directly (no systemd), everything they write under one folder, and
stopped again by the PIDs they were started with.

Needs root (slurmd runs jobs as their users) and Debian's packages; ``unavailable()``
says why a machine cannot have it, ``install()`` fetches the packages where apt can.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
# Where Debian's SLURM commands look for their configuration. The cluster's lives in its
# own folder and is linked here while it runs: Snakemake's job steps call srun with
# SLURM_CONF removed from the environment, as on a real site, where this is the path.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def _missing() -> list[str]:
    return [tool for tool in (*DAEMONS, "sbatch", "squeue") if shutil.which(tool) is None]


def install(timeout_s: float = 600) -> str | None:
    """Install Debian's SLURM and munge where they are missing; None on success, else why
    not."""
    if not _missing():
        return None
    if os.geteuid() != 0:
        return "SLURM is not installed and installing it needs root"
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip

    try:
        install = ("install", "-y", "--no-install-recommends", *PACKAGES)
        p = apt(*install)
        if p.returncode != 0:  # a stale package list: refresh it once
            apt("update")
            p = apt(*install)
    except subprocess.TimeoutExpired as e:
        return f"`{' '.join(e.cmd)}` took over {timeout_s:.0f} s"
    if p.returncode != 0 or _missing():
        return f"could not install {' '.join(PACKAGES)}: {p.stderr.strip()[-300:]}"
    return None


def unavailable() -> str | None:
    """Why this machine cannot run a local cluster, or None."""
    if os.geteuid() != 0:
        return "a local SLURM cluster needs root (slurmd starts jobs as their user)"
    if SYSTEM_CONF.is_symlink() and not SYSTEM_CONF.exists():
        SYSTEM_CONF.unlink()  # a link left by a killed run, to a folder long gone
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists: this machine has a SLURM setup the test leaves alone"
    return install()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node() -> tuple[str, int, int]:
    """(hostname, CPUs, memory MB) of this machine as slurmd sees it."""
    text = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", text))
    return fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])


class LocalSlurm:
    """``with LocalSlurm(folder) as env:`` runs a cluster; ``env`` is the environment its
    clients (sbatch, squeue, snakemake's executor) need."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.pids: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self.linked = False

    def _write_config(self) -> Path:
        run, log = self.root / "run", self.root / "log"
        for d in (run, log, self.root / "state", self.root / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        # munged refuses a key or socket folder others can write to.
        os.chmod(run, 0o755)
        key = run / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host, cpus, memory = _node()
        self.memory_mb = int(memory * 0.9)  # leave the daemons and the OS their share
        conf = self.root / "slurm.conf"
        conf.write_text(
            "\n".join([
                "ClusterName=xraybmdtest",
                f"SlurmctldHost={host}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={run / 'munge.socket'}",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                f"StateSaveLocation={self.root / 'state'}",
                f"SlurmdSpoolDir={self.root / 'spool'}",
                f"SlurmctldPidFile={run / 'slurmctld.pid'}",
                f"SlurmdPidFile={run / 'slurmd.pid'}",
                f"SlurmctldLogFile={log / 'slurmctld.log'}",
                f"SlurmdLogFile={log / 'slurmd.log'}",
                # No cgroups, no accounting database: what a container allows.
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                # Finished jobs stay visible to squeue for an hour: without accounting,
                # that is how Snakemake's executor learns a job's end state, and how the
                # test checks every job of a run that may take longer than 5 min on a
                # busy machine (a 300 s age once lost the run's first jobs).
                "MinJobAge=3600",
                "ReturnToService=2",
                "MpiDefault=none",
                f"NodeName={host} CPUs={cpus} RealMemory={self.memory_mb} State=UNKNOWN",
                f"PartitionName=local Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            ]) + "\n"
        )  # fmt: skip
        return conf

    def __enter__(self) -> dict[str, str]:
        conf = self._write_config()
        run, log = self.root / "run", self.root / "log"
        self.env = {**os.environ, "SLURM_CONF": str(conf)}
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(conf)  # unavailable() checked that there is none
        self.linked = True
        try:
            self._start("munged", [
                "munged", "--force", f"--key-file={run / 'munge.key'}",
                f"--socket={run / 'munge.socket'}", f"--pid-file={run / 'munged.pid'}",
                f"--log-file={log / 'munged.log'}", f"--seed-file={run / 'munged.seed'}",
            ], run / "munged.pid")  # fmt: skip
            self._start("slurmctld", ["slurmctld", "-f", str(conf)], run / "slurmctld.pid")
            self._start("slurmd", ["slurmd", "-f", str(conf)], run / "slurmd.pid")
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        return self.env

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, name: str, cmd: list[str], pid_file: Path) -> None:
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{name} did not start: {p.stderr.strip()}\n{self.logs()}")
        for _ in range(100):  # the daemon forks, then writes its PID file
            if pid_file.is_file() and pid_file.read_text().strip():
                self.pids[name] = int(pid_file.read_text().split()[0])
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} wrote no PID file\n{self.logs()}")

    def _wait_idle(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            p = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True,
                               text=True)  # fmt: skip
            if p.returncode == 0 and p.stdout.strip() in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not come up in {timeout_s:.0f} s\n{self.logs()}")

    def logs(self) -> str:
        """The daemons' logs, for a failure message."""
        parts = []
        for f in sorted((self.root / "log").glob("*.log")):
            parts.append(f"== {f.name}\n{f.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons this cluster started, by their PIDs, and wait for them; unlink
        its configuration."""
        if self.linked and SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.unlink()
            self.linked = False
        for name in reversed(DAEMONS):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
