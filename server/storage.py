"""S3 through boto3: presigned POSTs for uploads, HEAD checks, presigned GETs, and the worker's
reads and writes. The server signs; clients send and fetch the bytes themselves.

Keys are made by the server (`<prefix>/<owner>/<upload id>`); the database stores keys, never
URLs. Objects are private: reads are presigned GETs with short lifetimes. boto3 is blocking,
so async callers go through `asyncio.to_thread`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from loguru import logger

from server.config import AppEnv, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

POST_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class PurposeRules:
    prefix: str
    content_types: frozenset[str]
    max_bytes: int
    get_lifetime: timedelta


@dataclass(frozen=True, slots=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    content_type: str


def rules(settings: Settings) -> dict[str, PurposeRules]:
    def types(text: str) -> frozenset[str]:
        return frozenset(t.strip() for t in text.split(",") if t.strip())

    return {
        "PROOF_PHOTO": PurposeRules(
            "proofs",
            types(settings.upload_proof_photo_types),
            settings.upload_proof_photo_max_bytes,
            timedelta(hours=1),
        ),
        "AVATAR": PurposeRules(
            "avatars",
            types(settings.upload_avatar_types),
            settings.upload_avatar_max_bytes,
            timedelta(hours=1),
        ),
        "VERIFICATION_DOC": PurposeRules(
            "verification",
            types(settings.upload_verification_doc_types),
            settings.upload_verification_doc_max_bytes,
            timedelta(minutes=15),
        ),
        "MESSAGE_PHOTO": PurposeRules(
            "messages",
            types(settings.upload_message_photo_types),
            settings.upload_message_photo_max_bytes,
            timedelta(hours=1),
        ),
    }


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.rules = rules(settings)
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        self._create_missing_bucket = (
            settings.app_env is not AppEnv.PROD and settings.s3_endpoint_url is not None
        )

    def ensure_bucket(self) -> None:
        """Development and tests against a local S3: create the bucket when it is missing."""
        if not self._create_missing_bucket:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self.bucket)
            logger.bind(bucket=self.bucket).info("created the local S3 bucket")

    def presigned_post(self, key: str, content_type: str, max_bytes: int) -> PresignedPost:
        expires = int(POST_LIFETIME.total_seconds())
        post = self._client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires,
        )
        return PresignedPost(post["url"], dict(post["fields"]), datetime.now(UTC) + POST_LIFETIME)

    def head(self, key: str) -> Head | None:
        try:
            found = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return Head(int(found["ContentLength"]), str(found.get("ContentType", "")))

    def presigned_get(self, key: str, lifetime: timedelta) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=int(lifetime.total_seconds()),
        )
        return url

    def read(self, key: str) -> bytes:
        body: Any = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=key)
