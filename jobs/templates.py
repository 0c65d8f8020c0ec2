"""The text of every outbound message (templates/): email subject, plain text and HTML; SMS body.

Templates are Jinja2, HTML autoescaped, and strict: a missing parameter is an error (the job
fails and is retried or dead-lettered) rather than a message with a hole in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
EMAIL_TEMPLATES = frozenset(
    {
        "verify_email",
        "password_reset",
        "verification_status",
        "dispute_opened",
        "dispute_resolved",
        "account_status",
    }
)
SMS_TEMPLATES = frozenset({"phone_otp", "urgent_task_nearby"})

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
)


class UnknownTemplate(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


def render_email(name: str, params: Mapping[str, Any]) -> Email:
    if name not in EMAIL_TEMPLATES:
        raise UnknownTemplate(f"no email template {name!r}")
    subject = _env.get_template(f"email/{name}.subject.txt").render(params)
    return Email(
        subject=" ".join(subject.split()),
        text=_env.get_template(f"email/{name}.txt").render(params).strip() + "\n",
        html=_env.get_template(f"email/{name}.html").render(params),
    )


def render_sms(name: str, params: Mapping[str, Any]) -> str:
    if name not in SMS_TEMPLATES:
        raise UnknownTemplate(f"no SMS template {name!r}")
    return " ".join(_env.get_template(f"sms/{name}.txt").render(params).split())
