"""ACME issuance (RFC 8555, HTTP-01) on the blocking `acme` package: run it on a worker thread.

We drive the order ourselves instead of `ClientV2.poll_and_finalize`, whose fixed 1 s sleeps
dominate issuance time: polling starts at 50 ms and grows, honouring Retry-After.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from acme import challenges, client, errors, messages
from cryptography import x509
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from haloy.certs.certfile import CertInfo, describe
from haloy.certs.challenges import ChallengeStore
from haloy.certs.keys import key_to_pem, make_csr, new_key
from haloy.certs.policy import RenewalWindow
from haloy.certs.store import CertStore
from haloy.config.daemon import AcmeSettings
from haloy.errors import CertificateError

RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
POLL_FIRST = 0.05  # pebble with PEBBLE_VA_NOSLEEP validates within milliseconds
POLL_MAX = 2.0
ISSUE_TIMEOUT = 90.0  # seconds one issuance may take at most


class IssuanceError(CertificateError):
    """Issuance failed; says when to try again if the CA told us."""

    def __init__(
        self, message: str, *, hint: str | None = None,
        retry_after: dt.datetime | None = None, rate_limited: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class Issued:
    """A freshly issued certificate."""

    fullchain_pem: bytes
    key_pem: bytes
    info: CertInfo


class _Network(client.ClientNetwork):
    """Remembers the last Retry-After header, which `acme` drops when raising errors."""

    retry_after: str | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = super()._send_request(method, url, *args, **kwargs)
        self.retry_after = response.headers.get("Retry-After")
        return response


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.datetime | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return now + dt.timedelta(seconds=int(value))
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


class AcmeIssuer:
    """Issues certificates for a set of names; blocking, one order at a time."""

    def __init__(
        self, settings: AcmeSettings, store: CertStore, challenge_store: ChallengeStore,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.directory_url = settings.effective_directory_url
        self.store = store
        self.challenges = challenge_store
        self.clock = clock
        self._lock = threading.Lock()  # the acme client's nonce pool is not thread-safe
        self._client: client.ClientV2 | None = None
        self._net: _Network | None = None
        self.registrations = 0  # how many times this issuer registered an account

    def issue(self, names: Sequence[str]) -> Issued:
        """Order, validate over HTTP-01 and download a certificate for `names`."""
        with self._lock:
            try:
                return self._issue(list(names))
            except CertificateError:
                raise
            except messages.Error as exc:
                raise self._acme_error(names, exc) from exc
            except requests.RequestException as exc:
                raise IssuanceError(
                    f"cannot reach the ACME server {self.directory_url}: {exc}",
                    hint="check acme.directory_url and acme.ca_bundle in haloyd.yaml, and "
                    "that this server can reach the CA over HTTPS",
                ) from exc
            except errors.Error as exc:
                raise IssuanceError(
                    f"ACME issuance for {', '.join(names)} failed: {exc}",
                    hint="this is usually transient; haloyd retries with backoff",
                ) from exc

    def renewal_window(self, cert_pem: bytes) -> RenewalWindow | None:
        """The CA's ARI suggested window for a certificate, or None when not offered."""
        with self._lock:
            try:
                acme = self._connect()
                base = acme.directory["renewalInfo"]
                cert = x509.load_pem_x509_certificate(cert_pem)
                url = f"{base}/{client._renewal_info_path_component(cert)}"
                info = messages.RenewalInfo.from_json(acme.net.get(url).json())
                window = info.suggested_window
                return RenewalWindow(window.start, window.end)
            except Exception:  # ARI is advisory: any failure falls back to the 30-day rule
                return None

    # --- internals ------------------------------------------------------------------------

    def _connect(self) -> client.ClientV2:
        if self._client is not None:
            return self._client
        s = self.settings
        key = JWKEC(key=self.store.account_key(self.directory_url))
        # requests takes a CA bundle path where acme's annotation says bool.
        verify: Any = str(s.ca_bundle) if s.ca_bundle else True
        net = _Network(key, alg=ES256, verify_ssl=verify, user_agent="haloy", timeout=30)
        directory = client.ClientV2.get_directory(self.directory_url, net)
        acme = client.ClientV2(directory, net)
        saved = self.store.account_registration(self.directory_url)
        if saved is not None:
            net.account = messages.RegistrationResource.from_json(saved)
        else:
            self._register(acme, key)
        self._client, self._net = acme, net
        return acme

    def _register(self, acme: client.ClientV2, key: JWKEC) -> None:
        s = self.settings
        eab = None
        if s.eab_kid and s.eab_hmac_key:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(), kid=s.eab_kid, hmac_key=s.eab_hmac_key,
                directory=acme.directory,
            )
        elif acme.external_account_required():
            raise IssuanceError(
                f"the CA at {self.directory_url} requires external account binding",
                hint="set the EAB key id and HMAC key the CA gave you as acme.eab_kid and "
                "acme.eab_hmac_key in haloyd.yaml",
            )
        contact = {"email": s.email} if s.email else {}
        reg = messages.NewRegistration.from_data(
            terms_of_service_agreed=True, external_account_binding=eab, **contact
        )
        try:
            regr = acme.new_account(reg)
        except errors.ConflictError as exc:  # key already registered: adopt that account
            known = messages.RegistrationResource(uri=exc.location, body=reg)
            regr = acme.query_registration(known)
        except messages.Error as exc:
            if eab is None:
                raise
            # With a binding, a refused account is a wrong kid or key far more often than not.
            raise IssuanceError(
                f"the CA at {self.directory_url} refused the account's external account "
                f"binding (acme.eab_kid {s.eab_kid!r}): {exc.detail or exc}",
                hint="check acme.eab_kid and acme.eab_hmac_key in haloyd.yaml against the "
                "EAB credentials the CA gave you",
            ) from exc
        self.registrations += 1
        self.store.save_account_registration(self.directory_url, regr.to_json())

    def _issue(self, names: list[str]) -> Issued:
        acme = self._connect()
        deadline = time.monotonic() + ISSUE_TIMEOUT
        key = new_key()
        order = acme.new_order(make_csr(names, key))
        tokens: list[str] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # reused authorization (RFC 8555 §7.1.4)
                challb = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                    None,
                )
                if challb is None:
                    raise IssuanceError(
                        f"the CA offers no HTTP-01 challenge for {authz.body.identifier.value}",
                        hint="haloy answers HTTP-01 only; use a hand-placed certificate instead",
                    )
                response, validation = challb.response_and_validation(acme.net.key)
                token = challb.chall.encode("token")
                self.challenges.put(token, validation)
                tokens.append(token)
                acme.answer_challenge(challb, response)
            for authz in order.authorizations:
                self._await_authorization(acme, authz, deadline)
        finally:
            for token in tokens:
                self.challenges.remove(token)
        try:
            acme.begin_finalization(order)
        except messages.Error as exc:
            if exc.code != "orderNotReady":
                raise
        fullchain = self._await_certificate(acme, order, deadline)
        leaf = x509.load_pem_x509_certificate(fullchain)
        return Issued(fullchain, key_to_pem(key), describe(leaf))

    def _await_authorization(self, acme: client.ClientV2, authz: Any, deadline: float) -> None:
        delay = POLL_FIRST
        while True:
            authz, _ = acme.poll(authz)
            status = authz.body.status
            if status == messages.STATUS_VALID:
                return
            if status != messages.STATUS_PENDING:
                raise self._challenge_failed(authz)
            delay = self._sleep(delay, deadline)

    def _await_certificate(self, acme: client.ClientV2, order: Any, deadline: float) -> bytes:
        delay = POLL_FIRST
        while True:
            # POST-as-GET of the order URL (RFC 8555 §7.4); acme exposes no public call for it.
            body = messages.Order.from_json(acme._post_as_get(order.uri).json())
            if body.status == messages.STATUS_INVALID:
                raise IssuanceError(
                    f"the CA refused to issue the certificate: {body.error}",
                    hint="see the CA's reason above; haloyd retries with backoff",
                )
            if body.status == messages.STATUS_VALID and body.certificate:
                return bytes(acme._post_as_get(body.certificate).text.encode())
            delay = self._sleep(delay, deadline)

    def _sleep(self, delay: float, deadline: float) -> float:
        if time.monotonic() + delay > deadline:
            raise IssuanceError(
                f"the CA did not finish within {ISSUE_TIMEOUT:.0f}s",
                hint="the CA may be slow or overloaded; haloyd retries with backoff",
            )
        time.sleep(delay)
        return min(delay * 1.5, POLL_MAX)

    def _challenge_failed(self, authz: Any) -> IssuanceError:
        name = authz.body.identifier.value
        details = [str(c.error.detail or c.error) for c in authz.body.challenges if c.error]
        return IssuanceError(
            f"HTTP-01 validation of {name} failed: {'; '.join(details) or authz.body.status}",
            hint=f"make sure {name} resolves to this server and that port 80 reaches "
            "haloy-proxy (firewalls, CDNs and other proxies must pass "
            "/.well-known/acme-challenge/ through)",
        )

    def _acme_error(self, names: Sequence[str], exc: messages.Error) -> IssuanceError:
        now = self.clock()
        retry_after = parse_retry_after(self._net.retry_after if self._net else None, now)
        if exc.typ == RATE_LIMITED:
            return IssuanceError(
                f"the CA rate-limited the order for {', '.join(names)}: {exc.detail}",
                hint="haloyd waits for the CA's Retry-After before trying again; use "
                "acme.staging while testing",
                retry_after=retry_after, rate_limited=True,
            )
        return IssuanceError(
            f"the CA rejected the order for {', '.join(names)}: {exc.detail or exc}",
            hint="check that every name is a public DNS name you control",
            retry_after=retry_after,
        )
