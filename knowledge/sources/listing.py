"""What a source holds: its files' paths, cheap change markers and bytes. One lister per kind of source."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from knowledge.models import Source
from protostar.storage import minio_client


class SourceUnavailable(Exception):
    """The source could not be listed or read; ``str()`` is a reason staff can read. Nothing is removed then."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the folder, or the key under the prefix
    version: str  # changes whenever the content may have changed (size and mtime, or the ETag)
    size: int


class SourceLister(Protocol):
    def files(self) -> Iterator[SourceFile]: ...

    def read(self, path: str) -> bytes: ...


def folder_problem(location: str) -> str:
    """Why ``location`` cannot be a folder source ("" when it can): it must exist under SOURCE_FOLDER_ROOTS."""
    roots = [Path(root).resolve() for root in settings.SOURCE_FOLDER_ROOTS]
    if not roots:
        return "No folder may be synced: set SOURCE_FOLDER_ROOTS on the server to the folders that may be."
    path = Path(location)
    if not path.is_absolute():
        return "The folder must be an absolute path."
    resolved = path.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        return "The folder is outside the folders this server may sync (SOURCE_FOLDER_ROOTS)."
    if not resolved.is_dir():
        return "The folder does not exist on the server."
    return ""


class FolderLister:
    def __init__(self, location: str) -> None:
        self.root = Path(location).resolve()

    def files(self) -> Iterator[SourceFile]:
        problem = folder_problem(str(self.root))
        if problem:
            raise SourceUnavailable(problem)
        for directory, subdirectories, names in os.walk(self.root, onerror=self._unreadable):
            # Hidden files and folders are editor and system artefacts (.git, .DS_Store, ~$ lock files).
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            for name in sorted(names):
                full = Path(directory) / name
                if name.startswith((".", "~$")) or full.is_symlink() or not full.is_file():
                    continue
                stat = full.stat()
                yield SourceFile(
                    path=full.relative_to(self.root).as_posix(),
                    version=f"{stat.st_size}:{stat.st_mtime_ns}",
                    size=stat.st_size,
                )

    def read(self, path: str) -> bytes:
        full = (self.root / path).resolve()
        if self.root not in full.parents:
            raise SourceUnavailable("The file lies outside the source folder.")
        return full.read_bytes()

    @staticmethod
    def _unreadable(error: OSError) -> None:
        raise SourceUnavailable(f"The folder could not be listed ({error.strerror or type(error).__name__}).")


class S3Lister:
    """A bucket prefix on the configured S3 server (``S3_ENDPOINT_URL`` and its credentials)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = minio_client()

    def files(self) -> Iterator[SourceFile]:
        try:
            if not self.client.bucket_exists(bucket_name=self.bucket):
                raise SourceUnavailable(f"The bucket “{self.bucket}” does not exist.")
            for item in self.client.list_objects(bucket_name=self.bucket, prefix=self.prefix, recursive=True):
                if item.is_dir or item.object_name.endswith("/"):
                    continue
                yield SourceFile(path=item.object_name, version=(item.etag or "").strip('"'), size=item.size or 0)
        except (MinioException, HTTPError, OSError) as exc:
            raise SourceUnavailable(f"The bucket could not be listed ({type(exc).__name__}).") from exc

    def read(self, path: str) -> bytes:
        response = self.client.get_object(bucket_name=self.bucket, object_name=path)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()


def lister_for(source: Source) -> SourceLister:
    if source.kind == Source.Kind.FOLDER:
        return FolderLister(source.location)
    if source.kind == Source.Kind.S3:
        return S3Lister(source.location, source.prefix)
    raise SourceUnavailable(f"Unknown kind of source: {source.kind!r}.")
