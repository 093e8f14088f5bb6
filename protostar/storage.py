"""Object storage provisioning and health through the ``minio`` SDK (Django's storage does the file I/O)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from minio import Minio


def minio_client() -> Minio:
    endpoint = urlsplit(settings.S3_ENDPOINT_URL)
    return Minio(
        endpoint.netloc,
        access_key=settings.S3_ACCESS_KEY,
        secret_key=settings.S3_SECRET_KEY,
        secure=endpoint.scheme == "https",
        region=settings.S3_REGION,
    )


def bucket_ensure() -> bool:
    """Create the private documents bucket if missing; return True when it was created."""
    client = minio_client()
    if client.bucket_exists(bucket_name=settings.S3_BUCKET):
        return False
    # No bucket policy is set: a new bucket is private, every read needs credentials or a presigned URL.
    client.make_bucket(bucket_name=settings.S3_BUCKET)
    return True
