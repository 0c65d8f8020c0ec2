"""What the clients of each API version are told about its end.

One process serves every API package (server/app.py's API_VERSIONS). A version gets a
deprecation date (and later a sunset date) from the settings (`V1_DEPRECATED_AT`,
`V1_SUNSET_AT`, `V1_DEPRECATION_LINK`; docs/VERSIONING.md): its responses then carry them as
metadata (the deprecation interceptor) and `SystemService.GetServerInfo` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from server.config import Settings

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """What one API version's responses say about its end."""

    deprecated_at: datetime
    sunset_at: datetime | None = None
    link: str | None = None

    def headers(self) -> Headers:
        headers = [("deprecation", f"@{int(self.deprecated_at.timestamp())}")]
        if self.sunset_at is not None:
            headers.append(("sunset", format_datetime(self.sunset_at.astimezone(UTC), usegmt=True)))
        if self.link is not None:
            rels = ["deprecation"] if self.sunset_at is None else ["deprecation", "sunset"]
            headers.append(
                ("link", ", ".join(f'<{self.link}>; rel="{rel}"; type="text/html"' for rel in rels))
            )
        return tuple(headers)


def notices_from(settings: Settings) -> dict[str, Notice]:
    """Each API package with a deprecation date set -> its notice."""
    if settings.v1_deprecated_at is None:
        return {}
    link = str(settings.v1_deprecation_link) if settings.v1_deprecation_link else None
    return {"hustle.v1": Notice(settings.v1_deprecated_at, settings.v1_sunset_at, link)}
