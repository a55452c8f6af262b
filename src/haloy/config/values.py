"""Values in haloy.yaml that may come from elsewhere: a literal, an env var, or a secret.

These models hold references only; `haloy.config.resolve` turns them into plaintext on the
client, so the config kept for history and rollback never contains a secret.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_REF = re.compile(r"([a-z0-9_]+):([A-Za-z0-9_.-]+):(.+)")
SECRET_PROVIDERS = ("onepassword", "sops")


class ConfigModel(BaseModel):
    """Base of haloy.yaml models: unknown keys rejected, snake_case and camelCase spellings."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        loc_by_alias=False,
    )


def scalar_text(value: Any) -> Any:
    """Numbers and booleans written unquoted become their text; other types pass through."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class SourceReference(ConfigModel):
    """Where a value comes from: an environment variable or a secret provider."""

    env: str | None = Field(default=None, description="Name of an environment variable.")
    secret: str | None = Field(default=None, description='"provider:source:key".')

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceReference:
        if (self.env is None) == (self.secret is None):
            raise ValueError("give exactly one of 'env' or 'secret'")
        return self

    @field_validator("env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.fullmatch(value):
            raise ValueError(f"invalid environment variable name {value!r}")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = SECRET_REF.fullmatch(value)
        if match is None:
            raise ValueError(
                f"invalid secret reference {value!r}; use \"provider:source:key\", "
                'e.g. "onepassword:prod:db-password"'
            )
        if match[1] not in SECRET_PROVIDERS:
            raise ValueError(
                f"unknown secret provider {match[1]!r}; use one of {', '.join(SECRET_PROVIDERS)}"
            )
        return value

    @property
    def secret_parts(self) -> tuple[str, str, str]:
        """(provider, source, key) of a secret reference."""
        match = SECRET_REF.fullmatch(self.secret or "")
        if match is None:
            raise ValueError("not a secret reference")
        return match[1], match[2], match[3]


class ValueSource(ConfigModel):
    """A literal `value` or a `from` reference; a bare string is shorthand for the value."""

    value: str | None = None
    from_: SourceReference | None = Field(default=None, alias="from")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        data = scalar_text(data)
        return {"value": data} if isinstance(data, str) else data

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        return scalar_text(value)

    @model_validator(mode="after")
    def _one_of(self) -> ValueSource:
        if (self.value is None) == (self.from_ is None):
            raise ValueError("give exactly one of 'value' or 'from'")
        return self


class EnvVar(ConfigModel):
    """One environment variable of the app container (optionally also a build argument)."""

    name: str
    value: str | None = None
    from_: SourceReference | None = Field(default=None, alias="from")
    build_arg: bool = Field(default=False, description="Also pass as a docker build argument.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME.fullmatch(value):
            raise ValueError(
                f"invalid environment variable name {value!r}; use letters, digits and _"
            )
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        return scalar_text(value)

    @model_validator(mode="after")
    def _one_of(self) -> EnvVar:
        if (self.value is None) == (self.from_ is None):
            raise ValueError(f"env {self.name!r}: give exactly one of 'value' or 'from'")
        return self

    @property
    def source(self) -> ValueSource:
        """This entry's value as a ValueSource."""
        return ValueSource.model_construct(value=self.value, from_=self.from_)
