"""Which Faker providers a scenario file may call, and with which arguments.

``getattr(faker, name)`` is not a provider look-up: it reaches every public method of
the generator, ``add_provider`` and ``seed_instance`` included, and the ``Faker`` object
is shared by every scenario of an environment. A file calling ``add_provider`` would
rewire the values of *other* scenarios' later episodes (no longer reproducible), and a
real provider with a huge argument (``pystr(max_chars=10**8)``) costs a gigabyte and a
minute before its result can be looked at. So a provider is an entry of
:data:`PROVIDERS`, and each argument it takes is declared with a bound:

* ``("int", lo, hi)``: an integer (not a bool) in ``[lo, hi]``; sizes get small bounds
  (a password of at most 256 characters), values wide ones (``pyint``'s range);
* ``("str", n)``: text of at most ``n`` characters;
* ``("bool",)``: a boolean.

Every provider's result is also cut to :data:`MAX_RESULT_CHARS` at most (checked after
the call: with the argument bounds the call itself is small). Adding a provider means
adding a line here; the list covers the library and the usual personal-data fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Bound = tuple[Any, ...]

_BIG = 10**15
_TEXT = ("str", 256)
_SIZE = ("int", 0, 256)
_FLAG = ("bool",)
_NONE: dict[str, Bound] = {}

#: provider name -> {argument name: bound}.
PROVIDERS: dict[str, dict[str, Bound]] = {
    **{name: _NONE for name in (
        "name", "first_name", "last_name", "name_male", "name_female", "first_name_male",
        "first_name_female", "last_name_male", "last_name_female", "prefix", "suffix",
        "user_name", "company", "company_suffix", "company_email", "email", "free_email",
        "safe_email", "free_email_domain", "domain_name", "domain_word", "url", "uri",
        "phone_number", "msisdn", "street_address", "street_name", "building_number",
        "address", "city", "state", "state_abbr", "postcode", "zipcode", "country",
        "country_code", "job", "ssn", "iban", "bban", "swift", "ipv4_public", "ipv6",
        "mac_address", "credit_card_security_code", "credit_card_provider", "year",
        "month", "month_name", "day_of_week", "uuid4", "color_name", "word", "catch_phrase",
        "bs", "license_plate", "ean13", "isbn13", "currency_code", "file_name", "file_path",
        "user_agent", "slug", "time", "date", "date_object", "date_time", "iso8601",
        "century", "timezone", "latitude", "longitude", "pybool", "am_pm", "unix_time",
        "time_object", "ascii_email", "ascii_free_email", "ascii_safe_email",
        "ipv4_network_class", "port_number", "http_method", "tld", "currency_name")},
    "date_time_between": {"start_date": ("str", 32), "end_date": ("str", 32)},
    "future_date": {"end_date": ("str", 32)},
    "past_date": {"start_date": ("str", 32)},
    "future_datetime": {"end_date": ("str", 32)},
    "past_datetime": {"start_date": ("str", 32)},
    "boolean": {"chance_of_getting_true": ("int", 0, 100)},
    "pyfloat": {"left_digits": ("int", 0, 15), "right_digits": ("int", 0, 15),
                "positive": _FLAG, "min_value": ("int", -_BIG, _BIG),
                "max_value": ("int", -_BIG, _BIG)},
    "pydecimal": {"left_digits": ("int", 0, 15), "right_digits": ("int", 0, 15),
                  "positive": _FLAG, "min_value": ("int", -_BIG, _BIG),
                  "max_value": ("int", -_BIG, _BIG)},
    "bothify": {"text": _TEXT, "letters": _TEXT},
    "numerify": {"text": _TEXT},
    "lexify": {"text": _TEXT, "letters": _TEXT},
    "hexify": {"text": _TEXT, "upper": _FLAG},
    "password": {"length": ("int", 1, 256), "special_chars": _FLAG, "digits": _FLAG,
                 "upper_case": _FLAG, "lower_case": _FLAG},
    "pyint": {"min_value": ("int", -_BIG, _BIG), "max_value": ("int", -_BIG, _BIG),
              "step": ("int", 1, _BIG)},
    "random_int": {"min": ("int", -_BIG, _BIG), "max": ("int", -_BIG, _BIG),
                   "step": ("int", 1, _BIG)},
    "pystr": {"min_chars": _SIZE, "max_chars": _SIZE, "prefix": _TEXT, "suffix": _TEXT},
    "random_number": {"digits": ("int", 1, 18), "fix_len": _FLAG},
    "sha256": {"raw_output": _FLAG},
    "sha1": {"raw_output": _FLAG},
    "md5": {"raw_output": _FLAG},
    "date_of_birth": {"minimum_age": ("int", 0, 150), "maximum_age": ("int", 0, 150)},
    "date_between": {"start_date": ("str", 32), "end_date": ("str", 32)},
    "date_this_year": {"before_today": _FLAG, "after_today": _FLAG},
    "credit_card_number": {"card_type": ("str", 32)},
    "credit_card_expire": {"start": ("str", 32), "end": ("str", 32),
                           "date_format": ("str", 32)},
    "ipv4_private": {"network": _FLAG, "address_class": ("str", 1)},
    "ipv4": {"network": _FLAG},
    "hostname": {"levels": ("int", 0, 8)},
    "sentence": {"nb_words": ("int", 1, 64), "variable_nb_words": _FLAG},
    "paragraph": {"nb_sentences": ("int", 1, 16), "variable_nb_sentences": _FLAG},
    "text": {"max_nb_chars": ("int", 5, 4096)},
    "words": {"nb": ("int", 1, 64), "unique": _FLAG},
}

#: Characters of one provider's result.
MAX_RESULT_CHARS = 4096


def check_call(provider: str, args: Mapping[str, Any]) -> str | None:
    """Why ``provider(**args)`` is not allowed, or ``None`` when it is."""
    allowed = PROVIDERS.get(provider)
    if allowed is None:
        return (f"unknown Faker provider {provider!r}: not in the allow-list ("
                f"{', '.join(sorted(PROVIDERS))}; see mosaic_gym/scenario/faker_policy.py)")
    for name, value in args.items():
        bound = allowed.get(name)
        if bound is None:
            known = ", ".join(sorted(allowed)) or "none"
            return f"Faker provider {provider!r} takes no argument {name!r} (allowed: {known})"
        problem = _check_value(value, bound)
        if problem:
            return f"Faker argument {name!r} of {provider!r}: {problem}"
    return None


def _check_value(value: Any, bound: Bound) -> str | None:
    kind = bound[0]
    if kind == "bool":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {str(value)[:40]!r}"
        low, high = bound[1], bound[2]
        return None if low <= value <= high else f"{value} is outside [{low}, {high}]"
    if not isinstance(value, str):
        return f"expected text, got {str(value)[:40]!r}"
    return None if len(value) <= bound[1] else f"text of {len(value)} characters (max {bound[1]})"


def check_result(provider: str, produced: Any) -> str | None:
    """Why a provider's result cannot be used (too long), or ``None``."""
    size = len(str(produced))
    if size > MAX_RESULT_CHARS:
        return f"Faker provider {provider!r} produced {size} characters (max {MAX_RESULT_CHARS})"
    return None
