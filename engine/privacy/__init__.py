"""Privacy layer (SPEC §4). This far: the PII scrubber every emitted text passes through."""
from engine.privacy.scrub import DEFAULT_RULES, Rule, Scrubber, luhn_valid

__all__ = ["Scrubber", "Rule", "DEFAULT_RULES", "luhn_valid"]
