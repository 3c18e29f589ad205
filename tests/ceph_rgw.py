"""A one-node Ceph cluster with a RADOS Gateway on 127.0.0.1, from Debian's packages
(`ceph-mon ceph-osd radosgw`): one monitor, one memstore OSD, one gateway, no auth.
It is the model of a production S3 service that creates objects atomically but cannot
update them conditionally. The test session starts it when a test asks for the `rgw` store
kind and stops it at the end.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.support import local_s3_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONF = """[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_port}]
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms client mode = crc
ms mon client mode = crc
ms service mode = crc
ms mon service mode = crc
ms cluster mode = crc
ms mon cluster mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
public addr = 127.0.0.1
run dir = {d}/run
log file = {d}/log/$name.log
admin socket = {d}/run/$name.asok
[mon.a]
mon data = {d}/mon/ceph-a
[osd.0]
osd data = {d}/osd/ceph-0
osd objectstore = memstore
memstore device bytes = 2147483648
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {d}/rgw
"""

AS_ROOT = ["--setuser", "root", "--setgroup", "root"]


class RadosGateway:
    _instance: RadosGateway | None = None

    def __init__(self) -> None:
        for exe in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph"):
            if shutil.which(exe) is None:
                raise RuntimeError(
                    f"{exe} is missing: `make install-ceph` installs Debian's Ceph packages"
                )
        self.dir = Path(tempfile.mkdtemp(prefix="slatedb-rgw-"))
        for sub in ("mon/ceph-a", "osd/ceph-0", "run", "log", "rgw"):
            (self.dir / sub).mkdir(parents=True)
        fsid = str(uuid.uuid4())
        mon_port, self.port = _free_port(), _free_port()
        self.conf = str(self.dir / "ceph.conf")
        Path(self.conf).write_text(
            CONF.format(fsid=fsid, mon_port=mon_port, rgw_port=self.port, d=self.dir)
        )
        c = ["-c", self.conf]
        run = lambda *a: subprocess.run(list(a), check=True, capture_output=True, timeout=120)
        run(
            "monmaptool",
            "--create",
            "--add",
            "a",
            f"127.0.0.1:{mon_port}",
            "--fsid",
            fsid,
            str(self.dir / "monmap"),
        )
        run("ceph-mon", *c, *AS_ROOT, "--mkfs", "-i", "a", "--monmap", str(self.dir / "monmap"))
        run("ceph-mon", *c, *AS_ROOT, "-i", "a")
        run("ceph", *c, "--connect-timeout", "30", "osd", "create")
        run("ceph-osd", *c, *AS_ROOT, "-i", "0", "--mkfs")
        run("ceph-osd", *c, *AS_ROOT, "-i", "0")
        self.rgw = subprocess.Popen(
            ["radosgw", *c, *AS_ROOT, "-n", "client.rgw.a", "-f"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or self.rgw.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"the RADOS Gateway did not start; logs in {self.dir / 'log'}"
                    ) from None
                time.sleep(0.5)
        run(
            "radosgw-admin",
            *c,
            "user",
            "create",
            "--uid=test",
            "--display-name=test",
            "--access-key=test",
            "--secret-key=test",
        )
        self._buckets = itertools.count()
        atexit.register(self.stop)

    @classmethod
    def get(cls) -> RadosGateway:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def new_bucket(self) -> str:
        import boto3  # installed with moto

        name = f"rgw-{next(self._buckets)}"
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket=name)
        return name

    def store(self, bucket: str) -> Any:
        return local_s3_store(self.endpoint, bucket)

    def stop(self) -> None:
        if getattr(self, "rgw", None) is not None and self.rgw.poll() is None:
            self.rgw.terminate()
            try:
                self.rgw.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.rgw.kill()
        for daemon in ("ceph-osd", "ceph-mon"):
            subprocess.run(["pkill", "-9", "-f", f"{daemon} -c {self.conf}"], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
