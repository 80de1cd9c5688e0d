"""Prompt-injection attacks: wording strategies and conditional triggers."""

from mosaic_gym.attacks.conditional import ConditionalInjection
from mosaic_gym.attacks.strategies import (
    ENCODED_BEGIN,
    ENCODED_END,
    STRATEGIES,
    AttackContext,
    Slot,
    Strategy,
    TemplateStrategy,
    decode_encoded_payload,
    encode_goal,
    get_strategy,
    list_strategies,
)

__all__ = [
    "ENCODED_BEGIN",
    "ENCODED_END",
    "STRATEGIES",
    "AttackContext",
    "ConditionalInjection",
    "Slot",
    "Strategy",
    "TemplateStrategy",
    "decode_encoded_payload",
    "encode_goal",
    "get_strategy",
    "list_strategies",
]
