"""Debian tools the tests drive for real (Chromium for the pages, promtool for the monitoring
rules), installed with apt-get when the machine does not have them yet, so a fresh clone needs
nothing more than Python and make."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_debian_tool(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first when it is missing."""
    if path := shutil.which(command):
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh machine may not have the package lists yet.
        subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    path = shutil.which(command)
    if path is None:
        raise RuntimeError(f"apt-get installed {package} but {command} is still not on PATH")
    return path


# Chromium's background services try to reach Google at every start; on a closed network that
# costs seconds of refused connections, so the tests switch them off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
