"""Which accounts and regions an AWS collector reads, and the credentials for each.

``[aws] regions`` and ``[[aws.accounts]]`` (``pipepulse.settings``) name them; ``targets``
turns them into the (account, region) pairs one source's pass fans out over:

- a *regional* source (Step Functions, Glue, CloudWatch metrics and logs) reads every account
  in every region;
- an *account* source (Cost Explorer: a global API, always answered by us-east-1) reads each
  account once; give it the payer account to see the whole organisation's bill;
- any other source (the reference ledger, cost files, Airflow) runs once, as before.

With no ``[[aws.accounts]]`` the collectors use the default credentials (profile, keys or
instance role) as before; with no ``regions``, the one ``[aws] region``. That single target is
the *default* one: its watermark keys and metric series keys carry no prefix, so a config that
names neither reads exactly as it did.

``Credentials`` assumes each account's role once per pass (STS AssumeRole, with the external
id when given), counted like every other AWS call, and keeps the temporary credentials, or the
error, for the other regions and sources of the same pass: a role that cannot be assumed is
tried once per pass, and fails only its own account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from collectors.aws import CallCounter, client
from pipepulse.errors import CollectorError, PipepulseError
from pipepulse.settings import Settings

__all__ = ["GLOBAL_REGION", "SCOPES", "Credentials", "Target", "targets"]

SCOPES = ("once", "account", "regional")
GLOBAL_REGION = "us-east-1"  # where global APIs (Cost Explorer) answer
SESSION_NAME = "pipepulse-collector"


@dataclass(frozen=True)
class Target:
    """One (account, region) a source's pass reads."""

    account: str  # 12-digit id; "" for the default credentials' account
    region: str
    name: str = ""  # [[aws.accounts]] name
    role_arn: str | None = None  # None: the default credentials
    external_id: str | None = None
    default: bool = False  # the one target of a config without accounts/regions: no key prefix

    @property
    def prefix(self) -> str:
        """What this target's watermark and metric series keys start with."""
        return "" if self.default else f"{self.account or 'default'}/{self.region}/"

    @property
    def label(self) -> str:
        who = f"{self.name} ({self.account})" if self.name and self.account else self.name or self.account or "default account"
        return f"{who} {self.region}"

    def own(self, keys: dict[str, str]) -> dict[str, str]:
        """The entries of ``keys`` that belong to this target, with the prefix taken off."""
        if self.default:
            return {k: v for k, v in keys.items() if not _prefixed(k)}
        p = self.prefix
        return {k[len(p):]: v for k, v in keys.items() if k.startswith(p)}


def _prefixed(key: str) -> bool:
    """A key written by a non-default target (``<account|default>/<region>/...``)."""
    parts = key.split("/", 2)
    return len(parts) == 3 and (parts[0] == "default" or (len(parts[0]) == 12 and parts[0].isdigit()))


def targets(settings: Settings, scope: str) -> list[Target]:
    """The (account, region) pairs a source of ``scope`` reads, in config order."""
    if scope not in SCOPES:
        raise ValueError(f"unknown collector scope {scope!r}; known: {', '.join(SCOPES)}")
    if scope == "once":
        return [Target(account="", region=settings.aws_region, default=True)]
    accounts = settings.aws_accounts
    if scope == "account":
        if not accounts:
            return [Target(account="", region=settings.aws_region, default=True)]
        return [Target(account=a.account_id, region=GLOBAL_REGION, name=a.name, role_arn=a.role_arn, external_id=a.external_id)
                for a in accounts]
    regions = settings.aws_regions or (settings.aws_region,)
    if not accounts:
        return [Target(account="", region=r, default=r == settings.aws_region) for r in regions]
    return [Target(account=a.account_id, region=r, name=a.name, role_arn=a.role_arn, external_id=a.external_id)
            for a in accounts for r in regions]


class Credentials:
    """Temporary credentials per account for one pass (AssumeRole once, then reused)."""

    def __init__(self, settings: Settings, base: Callable[[], Any] | None = None) -> None:
        self._settings = settings
        self._base = base or boto3.Session
        self._cache: dict[str, dict[str, str] | PipepulseError] = {}
        self._sessions: dict[tuple[str, str], Any] = {}
        self._shared_loader: Any = None

    def _loader(self) -> Any:
        if self._shared_loader is None:
            self._shared_loader = boto3.Session()._session.get_component("data_loader")
        return self._shared_loader

    def session_factory(self, target: Target, *, source: str, calls: CallCounter) -> Callable[[], Any]:
        """A factory of boto3 sessions holding ``target``'s credentials; assumes its role (counted
        in ``calls``) the first time the pass needs it, raising the pipepulse error when denied."""
        if target.role_arn is None:
            return self._base
        creds = self._cache.get(target.role_arn)
        if creds is None:
            try:
                creds = self._assume(target, source=source, calls=calls)
            except PipepulseError as exc:
                creds = exc
            self._cache[target.role_arn] = creds
        if isinstance(creds, PipepulseError):
            # the same answer for every region and source of this pass, under this source's name
            raise type(creds)(source, creds.detail) if isinstance(creds, CollectorError) else creds
        key = (target.role_arn, target.region)
        if key not in self._sessions:
            session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=target.region)
            # one loader for every session of the pass: each service model is read from disk once
            session._session.register_component("data_loader", self._loader())
            self._sessions[key] = session
        session = self._sessions[key]
        return lambda: session

    def _assume(self, target: Target, *, source: str, calls: CallCounter) -> dict[str, str]:
        assert target.role_arn is not None
        sts = client(self._settings, "sts", source=source, calls=calls, session_factory=self._base)
        kwargs: dict[str, Any] = {"RoleArn": target.role_arn, "RoleSessionName": SESSION_NAME}
        if target.external_id:
            kwargs["ExternalId"] = target.external_id
        try:
            answer = sts.assume_role(**kwargs)
        except PipepulseError as exc:
            if not isinstance(exc, CollectorError):
                raise
            raise type(exc)(source, f"cannot assume {target.role_arn} for account {target.name or target.account}: "
                                    f"{exc.detail}; check the role's trust policy (and external_id)") from exc
        c = answer["Credentials"]
        return {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"], "SessionToken": c["SessionToken"]}
