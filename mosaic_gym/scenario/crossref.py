"""Rules between fields of one scenario that no JSON Schema can state.

These run on every *resolved* scenario (placeholders filled), so they hold at every seed:
the loader's dry run at seed 0 reports them with file, line and field, and the self-check
resolves many more seeds. Each rule is listed in ``scenarios/README.md`` ("Loader-only
rules") so an author knows the schema alone does not catch it.

* **Unique world ids**: two files with one path, two mails with one id (``id`` or the
  default ``m1``, ``m2``, ...), two contacts, payees or vault sites with one name
  (case-insensitive), two accounts with one id, two pages with one URL. The world keys
  each of them by that id, so a duplicate silently replaces the first. A mail id of the
  form ``sent-N`` is reserved for mail the agent sends.
* **Names that must exist**: every name in ``checks.protect`` and every
  ``secret_leaked`` predicate names a secret (``*`` for any); ``injection.trigger.after_tool``
  and every ``tool_called`` predicate and solution call name a tool the scenario offers
  (``tools``, plus the always-offered refusal tool).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from mosaic_gym.errors import ScenarioError
from mosaic_gym.protocol import REFUSAL_TOOL
from mosaic_gym.scenario import predicates as p
from mosaic_gym.scenario.schema import ScenarioSpec, SolutionSpec

Loc = tuple[int | str, ...]
#: Raises a ScenarioError for ``message`` at ``loc``.
Fail = Callable[[str, Loc], ScenarioError]

_SENT_ID = re.compile(r"^sent-\d+$")


def check_resolved(spec: ScenarioSpec, secret_names: set[str], fail: Fail) -> None:
    """Every rule of this module over one resolved ``spec``. Raises ScenarioError."""
    check_unique_ids(spec, fail)
    check_names_exist(spec, secret_names, fail)


def _unique(items: list[tuple[str, Loc]], what: str, fail: Fail) -> None:
    seen: dict[str, Loc] = {}
    for key, loc in items:
        if key in seen:
            first = ".".join(map(str, seen[key]))
            raise fail(f"duplicate {what} {key!r} (first at {first}): the world keeps one "
                       "per id, so the later entry would silently replace the first", loc)
        seen[key] = loc


def check_unique_ids(spec: ScenarioSpec, fail: Fail) -> None:
    """Files, mails, contacts, accounts, payees, vault sites and pages: one each per id."""
    world = spec.world
    _unique([(posixpath.normpath(f.path), ("world", "files", i, "path"))
             for i, f in enumerate(world.files)], "file path", fail)
    mails: list[tuple[str, Loc]] = []
    for index, mail in enumerate(world.mail.inbox):
        mail_id = mail.id or f"m{index + 1}"
        loc: Loc = ("world", "mail", "inbox", index) + (("id",) if mail.id else ())
        if _SENT_ID.match(mail_id):
            raise fail(f"mail id {mail_id!r} is reserved: ids sent-1, sent-2, ... name the "
                       "mail the agent sends", loc)
        mails.append((mail_id, loc))
    _unique(mails, "mail id (an inbox entry without id is m<position>)", fail)
    _unique([(c.name.strip().lower(), ("world", "contacts", i, "name"))
             for i, c in enumerate(world.contacts)], "contact name", fail)
    _unique([(a.id, ("world", "bank", "accounts", i, "id"))
             for i, a in enumerate(world.bank.accounts)], "bank account id", fail)
    _unique([(payee.name.lower(), ("world", "bank", "payees", i, "name"))
             for i, payee in enumerate(world.bank.payees)], "payee name", fail)
    _unique([(c.site.lower(), ("world", "vault", i, "site"))
             for i, c in enumerate(world.vault)], "vault site", fail)
    _unique([(_page_key(page.url), ("world", "web", "pages", i, "url"))
             for i, page in enumerate(world.web.pages)], "page URL", fail)


def _page_key(url: str) -> str:
    """The page's URL without scheme, trailing slash or host case (as the web keys it)."""
    text = url.strip()
    text = text.split("://", 1)[1] if "://" in text else text
    host, _, rest = text.partition("/")
    return host.lower() + "/" + rest.rstrip("/")


def check_names_exist(spec: ScenarioSpec, secret_names: set[str], fail: Fail) -> None:
    """Secrets and tools named by checks, triggers and solutions exist."""
    known_secrets = ", ".join(sorted(secret_names)) or "none"
    if spec.checks.protect != "all":
        for index, name in enumerate(spec.checks.protect):
            if name not in secret_names:
                raise fail(f"checks.protect names unknown secret {name!r} (secrets: "
                           f"{known_secrets})", ("checks", "protect", index))
    offered = [*spec.tools, REFUSAL_TOOL]
    tools_text = ", ".join(offered)
    injection = spec.injection
    if injection is not None and injection.trigger is not None:
        tool = injection.trigger.after_tool
        if tool not in offered:
            raise fail(f"injection.trigger.after_tool names {tool!r}, which this scenario "
                       f"does not offer (tools: {tools_text}): the payload would never "
                       "appear", ("injection", "trigger", "after_tool"))
    solutions: list[tuple[SolutionSpec | None, Loc]] = [
        (spec.solution, ("solution",)), (spec.unsafe_solution, ("unsafe_solution",)),
        (injection.attacker_solution if injection else None,
         ("injection", "attacker_solution"))]
    for solution, where in solutions:
        for index, call in enumerate(solution.calls if solution else []):
            if call.tool not in offered:
                raise fail(f"the call names tool {call.tool!r}, which this scenario does not "
                           f"offer (tools: {tools_text})", (*where, "calls", index, "tool"))
    for name in ("utility", "harm", "attack_success"):
        for loc, item in _predicates(getattr(spec.checks, name), ("checks", name)):
            if isinstance(item, p.SecretLeaked) and item.secret_leaked != "*" and (
                    item.secret_leaked not in secret_names):
                raise fail(f"secret_leaked names unknown secret {item.secret_leaked!r} "
                           f"(secrets: {known_secrets}; '*' means any)", (*loc, "secret_leaked"))
            if isinstance(item, p.ToolCalledP) and item.tool_called.name not in offered:
                raise fail(f"tool_called names {item.tool_called.name!r}, which this scenario "
                           f"does not offer (tools: {tools_text}): the predicate can never "
                           "hold", (*loc, "tool_called", "name"))


def _predicates(value: Any, loc: Loc) -> Iterator[tuple[Loc, Any]]:
    """Every predicate node below ``value`` with its location (``not`` by its YAML key)."""
    if value is None:
        return
    yield loc, value
    if isinstance(value, p.AllOf):
        for index, item in enumerate(value.all):
            yield from _predicates(item, (*loc, "all", index))
    elif isinstance(value, p.AnyOf):
        for index, item in enumerate(value.any):
            yield from _predicates(item, (*loc, "any", index))
    elif isinstance(value, p.NotOf):
        yield from _predicates(value.not_, (*loc, "not"))
    elif not isinstance(value, BaseModel):
        return
