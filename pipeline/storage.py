"""Where the pipeline reads and writes files: an S3 prefix or a local folder, one interface.

``location("s3://bucket/prefix")`` or ``location("/some/folder")`` gives a ``Storage`` with
``list``, ``read``, ``write_atomic`` and ``delete``. ``write_atomic`` never leaves a half-written
object behind: it writes to a temporary key (``_tmp/...``) first and then promotes it in one step
(S3 ``CopyObject``, which is atomic for readers; ``os.replace`` locally), deleting the temporary
object whatever happens. S3 is reached through boto3, so ``AWS_ENDPOINT_URL`` points it at a
local moto server exactly as it would point at AWS.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

__all__ = ["LocalStorage", "S3Storage", "SourceFile", "Storage", "location"]


@dataclass(frozen=True)
class SourceFile:
    """One file in a storage: its key relative to the storage root, size and version tag."""

    key: str
    size: int
    etag: str


class Storage:
    """Interface of a file store (see module docstring)."""

    url: str

    def list(self, prefix: str = "") -> list[SourceFile]:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def write_atomic(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` so readers see the old object or the whole new one."""
        tmp = f"_tmp/{uuid.uuid4().hex}/{key.rsplit('/', 1)[-1]}"
        try:
            self._put(tmp, data)
            self._promote(tmp, key)
        finally:
            self.delete(tmp)

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def ensure(self) -> None:
        """Create the bucket or folder when missing."""

    def _put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def _promote(self, tmp: str, key: str) -> None:
        raise NotImplementedError


class S3Storage(Storage):
    def __init__(self, bucket: str, prefix: str = "", *, client=None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.s3 = client or boto3.client("s3")

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def ensure(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    def list(self, prefix: str = "") -> list[SourceFile]:
        out: list[SourceFile] = []
        root = self._k("")
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._k(prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(root) :]
                    if not key.startswith("_tmp/"):
                        out.append(SourceFile(key, int(obj["Size"]), obj["ETag"].strip('"')))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucket":
                return []
            raise
        return sorted(out, key=lambda f: f.key)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self._k(key))

    def _put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def _promote(self, tmp: str, key: str) -> None:
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=self._k(key),
            CopySource={"Bucket": self.bucket, "Key": self._k(tmp)},
        )


class LocalStorage(Storage):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def list(self, prefix: str = "") -> list[SourceFile]:
        if not self.root.is_dir():
            return []
        out = []
        for path in self.root.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.startswith("_tmp/"):
                data = path.read_bytes()
                out.append(SourceFile(key, len(data), hashlib.md5(data).hexdigest()))  # noqa: S324 - an etag, as S3's
        return sorted(out, key=lambda f: f.key)

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def delete(self, key: str) -> None:
        path = self.root / key
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def _put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def _promote(self, tmp: str, key: str) -> None:
        dest = self.root / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.root / tmp, dest)


def location(url: str, *, client=None) -> Storage:
    """A Storage for ``s3://bucket/prefix`` or a local folder path."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return S3Storage(bucket, prefix, client=client)
    return LocalStorage(url)
