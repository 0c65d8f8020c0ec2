"""The jobs' contracts: every outbox job has its actor, every template renders."""

from __future__ import annotations

import inspect
import os

import pytest

os.environ.setdefault("DATABASE_URL", "postgresql://unused@127.0.0.1:1/unused")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")

from jinja2 import UndefinedError

from jobs import templates
from jobs.registry import broker
from server import outbox


def test_every_outbox_job_is_an_actor_taking_outbox_id_and_payload() -> None:
    for job in outbox.JOBS:
        actor = broker.get_actor(job)
        params = list(inspect.signature(actor.fn).parameters)
        assert params == ["outbox_id", "payload"], job


def test_every_outbox_actor_runs_its_effect_through_once() -> None:
    """A row is done only when once() commits (jobs/once.py): an actor that skipped it would
    never finish its rows, and the relay's sweep would send them again when their marker
    expires, doing the effect twice."""
    for job in outbox.JOBS:
        source = inspect.getsource(broker.get_actor(job).fn)
        assert f'once(outbox_id, "{job}"' in source, job


def test_the_schema_only_queues_known_jobs() -> None:
    from server.migrate import MIGRATIONS_DIR

    sql = " ".join(p.read_text() for p in MIGRATIONS_DIR.glob("*.sql"))
    assert "'capability.recompute'" in sql
    assert "capability.recompute" in outbox.JOBS


SAMPLES = {
    "verify_email": {"name": "Ana", "link": "https://app/v?t=1"},
    "password_reset": {"name": "Ana", "link": "https://app/r?t=1"},
    "verification_status": {"name": "Ana", "state": "REJECTED", "kind_label": "insurance",
                             "expires_on": "2027-01-01", "reason": "blurry"},
    "dispute_opened": {"name": "Ana", "opened_by": "Ben", "task_title": "Fix sink", "reason": "late"},
    "dispute_resolved": {"name": "Ana", "task_title": "Fix sink", "resolution": "SPLIT", "released": "$10.00",
                         "refunded": "$15.00", "note": ""},
    "account_status": {"name": "Ana", "status": "SUSPENDED", "reason": "spam"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(templates.EMAIL_TEMPLATES))
def test_every_email_template_renders(name: str) -> None:
    email = templates.render_email(name, SAMPLES[name])
    assert email.subject
    assert "\n" not in email.subject
    assert email.text.strip()
    assert email.html.lstrip().startswith("<!doctype html>")


def test_sms_templates_render() -> None:
    assert templates.render_sms("phone_otp", {"code": "123456"}).startswith("123456 is your Hustle")
    text = templates.render_sms(
        "urgent_task_nearby", {"distance_km": 1.2, "task_title": "Move a couch", "price": "$80"}
    )
    assert "1.2 km" in text
    assert "Move a couch" in text


def test_a_missing_parameter_is_an_error_not_a_hole() -> None:
    with pytest.raises(UndefinedError):
        templates.render_email("verify_email", {"name": "Ana"})


def test_html_is_escaped() -> None:
    email = templates.render_email(
        "verify_email", {"name": "<script>x</script>", "link": "https://a"}
    )
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html


def test_unknown_template() -> None:
    with pytest.raises(templates.UnknownTemplate):
        templates.render_sms("nope", {})
