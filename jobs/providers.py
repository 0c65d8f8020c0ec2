"""SendGrid and Twilio through their own SDKs, from settings.

With real keys they talk to the providers. Without (dev, tests) the same SDK code runs against
the local capturing endpoint (server/capture.py), which speaks both providers' HTTP APIs:
SendGrid's client is pointed at it with `host`, Twilio's through an HTTP client that rewrites
the API's base URL.
"""

from __future__ import annotations

from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from jobs.templates import Email
from server.config import Settings

TWILIO_API = "https://api.twilio.com"
CAPTURE_TWILIO_SID = "AC" + "0" * 32


class PermanentFailure(Exception):
    """The provider refused the message for good (bad address, bad request): do not retry."""


class _CaptureHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending to the capturing endpoint instead of api.twilio.com."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=10)
        self._base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, url.replace(TWILIO_API, self._base_url, 1), *args, **kwargs)


class Providers:
    """The email and SMS clients of one worker process (built once, used from many threads)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        email_captured, sms_captured = settings.uses_capture
        if email_captured:
            self.email = SendGridAPIClient(api_key="SG.capture", host=settings.capture_url)
        else:
            assert settings.sendgrid_api_key is not None
            self.email = SendGridAPIClient(
                api_key=settings.sendgrid_api_key.get_secret_value(), host=settings.sendgrid_host
            )
        if sms_captured:
            self.sms = Client(
                CAPTURE_TWILIO_SID, "capture", http_client=_CaptureHttpClient(settings.capture_url)
            )
        else:
            assert settings.twilio_auth_token is not None
            self.sms = Client(
                settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()
            )

    def send_email(self, to: str, email: Email) -> None:
        mail = Mail(
            from_email=self._settings.email_from,
            to_emails=to,
            subject=email.subject,
            plain_text_content=email.text,
            html_content=email.html,
        )
        try:
            self.email.send(mail)
        except HTTPError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code != 429:
                raise PermanentFailure(f"SendGrid refused the message: {exc.status_code}") from exc
            raise

    def send_sms(self, to: str, body: str) -> str:
        try:
            message = self.sms.messages.create(
                to=to, from_=self._settings.twilio_from_number, body=body
            )
        except TwilioRestException as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                raise PermanentFailure(
                    f"Twilio refused the message: {exc.status} {exc.code}"
                ) from exc
            raise
        return str(message.sid)
