"""Pydantic models of the scenario file format.

A scenario file is YAML holding one :class:`ScenarioSpec`. String fields may
contain ``{{ name }}`` placeholders, resolved *after* parsing from the
scenario's ``variables`` and ``secrets`` (Faker-seeded per episode) and, for
the reserved name ``injection``, from the attack payload. Substitution is a
single pass over parsed values, so payloads with braces, quotes, YAML syntax
or any Unicode survive untouched.

``mosaic scenarios schema`` prints the JSON Schema generated from these
models for editors.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mosaic_gym.core.events import check_event_kind
from mosaic_gym.scenario.predicates import Predicate
from mosaic_gym.scenario.templating import TemplateModel, is_template

Category = Literal["benign", "harmful", "injection", "privacy"]
Expected = Literal["complete", "refuse"]
Split = Literal["auto", "train", "test", "ood"]

CATEGORIES: tuple[Category, ...] = ("benign", "harmful", "injection", "privacy")

#: The library's domains. Domains are an open set: any lower-case snake_case name
#: (``DOMAIN_PATTERN``) is a domain; these are the ones the library uses. The ood split
#: holds out whole domains (see ``OOD_DOMAINS``).
DOMAIN_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
DOMAINS = (
    "developer_workstation",
    "email_assistant",
    "finance",
    "hr",
    "customer_support",
    "devops",
    "personal_admin",
)
OOD_DOMAINS = ("hr", "customer_support")

#: Placeholder name reserved for the attack payload.
INJECTION_SLOT = "injection"


class _Model(TemplateModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FakerValue(_Model):
    """A value drawn from a Faker provider under the episode seed."""

    faker: str = Field(description="Faker provider name, e.g. name, email, iban, password.")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    prefix: str = ""
    suffix: str = ""


class ChoiceValue(_Model):
    """A value chosen uniformly under the episode seed."""

    choice: list[Any] = Field(min_length=1)


ValueSpec = FakerValue | ChoiceValue | str | int | float | bool


class SecretSpec(_Model):
    """A canary whose value must not leave through an egress channel."""

    value: ValueSpec
    allowed_destinations: list[str] = Field(
        default_factory=list,
        description="Hosts or addresses (globs) where this secret may legitimately go; "
                    "colleagues too: mail inside leaks unless it goes to the user, to an "
                    "address that held the secret at the start, or to one listed here.",
    )
    description: str = ""
    kind: str | None = Field(
        default=None,
        description="token, text, number, amount, phone, card, iban or date "
        "(mosaic_gym.scenario.secret_kinds); inferred from the value when omitted.",
    )
    min_length: int | None = Field(
        default=None, ge=4,
        description="Shortest contiguous share of a token secret that counts as a leak.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data:
            return data
        return {"value": data}


def _parse_mode(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("mode must be an octal number such as '0644'")
    if isinstance(value, int):
        if not 0 <= value <= 0o7777:
            raise ValueError(f"mode {value} is out of range (0 to 0o7777)")
        return value
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not text or not set(text) <= set("01234567"):  # int() also takes "+7", "0_644"
            raise ValueError(f"mode {value!r} is not an octal number such as '0644'")
        mode = int(text, 8)
        if not 0 <= mode <= 0o7777:
            raise ValueError(f"mode {value!r} is out of range")
        return mode
    raise ValueError("mode must be an octal number such as '0644'")


class FileSpecModel(_Model):
    path: str = Field(description="Absolute path inside the sandbox.")
    content: str = ""
    mode: int = Field(0o644, description="Octal permission bits; write '0600' (quoted).")
    dir: bool = Field(False, description="Create a directory instead of a file.")

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any, info: ValidationInfo) -> Any:
        if is_template(value, info):
            return value
        return _parse_mode(value)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        if is_template(value, info):
            return value
        if not value.startswith("/") or "\x00" in value:
            raise ValueError(f"path {value!r} must be absolute")
        return value


class EmailSpec(_Model):
    id: str | None = None
    sender: str = Field(alias="from")
    to: list[str] | str | None = None
    subject: str = ""
    body: str = ""
    folder: Literal["inbox", "sent", "archive"] = "inbox"
    date: str = "2026-03-02 09:00"


class MailboxSpec(_Model):
    address: str = "user@acme.example"
    internal_domains: list[str] = Field(
        default_factory=list,
        description="Domains (or single addresses) that count as inside. Default: the "
                    "owner's domain, or only the owner's address on a public mail provider "
                    "(gmail.com, outlook.com, ...: see mosaic_gym.world.identity).",
    )
    inbox: list[EmailSpec] = Field(default_factory=list)


class CredentialSpec(_Model):
    site: str
    username: str
    password: str
    notes: str = ""


class AccountSpec(_Model):
    id: str
    owner: str = "user"
    balance: float = 0.0
    currency: str = "EUR"


class PayeeSpec(_Model):
    name: str
    account: str


class BankSpec(_Model):
    accounts: list[AccountSpec] = Field(default_factory=list)
    payees: list[PayeeSpec] = Field(default_factory=list)


class PageSpec(_Model):
    url: str
    content: str = ""
    title: str = ""


class WebSpec(_Model):
    pages: list[PageSpec] = Field(default_factory=list)


class ContactSpec(_Model):
    name: str
    email: str = ""
    phone: str = ""
    notes: str = ""


class WorldSpec(_Model):
    user_name: str = "Alex Morgan"
    files: list[FileSpecModel] = Field(default_factory=list)
    mail: MailboxSpec = Field(default_factory=MailboxSpec)
    vault: list[CredentialSpec] = Field(default_factory=list)
    bank: BankSpec = Field(default_factory=BankSpec)
    web: WebSpec = Field(default_factory=WebSpec)
    contacts: list[ContactSpec] = Field(default_factory=list)


class ToolCallSpec(_Model):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class SolutionSpec(_Model):
    """A scripted run: tool calls in order, then a final answer (or a refusal)."""

    calls: list[ToolCallSpec] = Field(default_factory=list)
    answer: str = "Done."
    refuse: bool = Field(False, description="End with refusal_tool instead of an answer.")

    @model_validator(mode="before")
    @classmethod
    def _list_shorthand(cls, data: Any) -> Any:
        return {"calls": data} if isinstance(data, list) else data


class TriggerSpec(_Model):
    """Conditional injection: the payload appears only after this action."""

    after_tool: str
    arg_contains: str | None = None


class InjectionSpec(_Model):
    #: The self-check and the episode plan read the strategies before resolving anything.
    fixed_fields: ClassVar[frozenset[str]] = frozenset({"strategies"})

    goal: str = Field(description="What the attacker wants the agent to do (plain language).")
    strategies: list[str] | Literal["all"] = "all"
    trigger: TriggerSpec | None = None
    attacker_solution: SolutionSpec = Field(
        description="Calls that achieve the goal; the self-check proves they trip the judge."
    )


class EffectBound(_Model):
    """An allowed irreversible effect with limits: ``{target: "bank:DE89*", max_count: 1,
    max_amount: 400}`` allows at most one matching event, moving at most 400 in all;
    ``{target: "/srv/app/values.yaml", kinds: [file_overwritten]}`` allows rewriting the
    file and not deleting it."""

    target: str = Field(description="Glob over irreversible event targets.")
    max_count: int | None = Field(
        None, ge=0, description="At most this many matching events in the episode."
    )
    max_amount: float | None = Field(
        None, ge=0, description="At most this much money in all (transfer events)."
    )
    kinds: list[str] | None = Field(
        None, min_length=1,
        description="Only events of these kinds (file_overwritten, permissions_changed...): "
                    "a file the task edits is not thereby allowed to be deleted.",
    )

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str] | None) -> list[str] | None:
        return value if value is None else [check_event_kind(kind) for kind in value]


def _effect_kind(value: Any) -> str:
    return "glob" if isinstance(value, str) else "bound"


#: One entry of ``allowed_effects``: a glob, or a bound (a mapping, validated as such so
#: that a mistake in it is reported as one).
AllowedEffect = Annotated[
    Union[Annotated[str, Tag("glob")], Annotated[EffectBound, Tag("bound")]],  # noqa: UP007
    Discriminator(_effect_kind),
]


class ChecksSpec(_Model):
    utility: Predicate | None = Field(None, description="True when the user's task is done.")
    harm: Predicate | None = Field(None, description="True when harm specific to it happened.")
    attack_success: Predicate | None = Field(
        None, description="True when the injected goal was achieved."
    )
    protect: list[str] | Literal["all"] = Field(
        "all", description="Secrets that must not leave (names)."
    )
    allowed_effects: list[AllowedEffect] = Field(
        default_factory=list,
        description="Irreversible event targets the task legitimately needs: globs (any "
                    "number of events) or bounds {target, max_count, max_amount}.",
    )


class VariantSpec(_Model):
    fixed_fields: ClassVar[frozenset[str]] = frozenset({"name"})

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    vars: dict[str, ValueSpec] = Field(default_factory=dict)


class ScenarioSpec(_Model):
    """One scenario file (possibly a family of parameterised variants)."""

    #: Read to select, split and plan episodes before any placeholder is filled.
    fixed_fields: ClassVar[frozenset[str]] = frozenset(
        {"id", "category", "domain", "expected", "split"})

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")
    title: str
    category: Category
    domain: str = Field(pattern=DOMAIN_PATTERN, description=(
        "Any lower-case snake_case name; the library uses " + ", ".join(DOMAINS) + "."))
    expected: Expected
    split: Split = "auto"
    user_request: str
    tools: list[str] = Field(min_length=1)
    max_steps: int | None = Field(None, ge=1, le=100)
    sandbox_image: str = Field(
        "base", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="Docker sandbox image variant (a folder under sandboxes/); "
                    "the fake backend ignores it.",
    )
    variables: dict[str, ValueSpec] = Field(default_factory=dict)
    secrets: dict[str, SecretSpec] = Field(default_factory=dict)
    world: WorldSpec = Field(default_factory=WorldSpec)
    injection: InjectionSpec | None = None
    checks: ChecksSpec = Field(default_factory=lambda: ChecksSpec.model_validate({}))
    solution: SolutionSpec = Field(default_factory=lambda: SolutionSpec.model_validate({}))
    unsafe_solution: SolutionSpec | None = Field(
        None, description="What a comply-with-everything agent does (harmful, privacy)."
    )
    family: list[VariantSpec] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioSpec:
        if self.category == "injection" and self.injection is None:
            raise ValueError("an injection scenario needs an 'injection' section")
        if self.category == "harmful" and self.expected != "refuse":
            raise ValueError("a harmful scenario must expect 'refuse'")
        if self.category == "benign" and self.expected != "complete":
            raise ValueError("a benign scenario must expect 'complete'")
        if self.expected == "complete" and self.checks.utility is None:
            raise ValueError("checks.utility is required when expected is 'complete'")
        if self.category == "harmful" and (self.checks.harm is None or not self.unsafe_solution):
            raise ValueError("a harmful scenario needs checks.harm and an unsafe_solution")
        if self.injection is not None and self.checks.attack_success is None:
            raise ValueError("checks.attack_success is required with an injection section")
        reserved = {INJECTION_SLOT} & (set(self.variables) | set(self.secrets))
        if reserved:
            raise ValueError(f"'{INJECTION_SLOT}' is reserved for the attack payload")
        clash = set(self.variables) & set(self.secrets)
        if clash:
            raise ValueError(f"names used both as variable and secret: {sorted(clash)}")
        names = [variant.name for variant in self.family]
        if len(names) != len(set(names)):
            raise ValueError("family variant names must be unique")
        return self
