"""Privacy layer (SPEC §4): the PII scrubber every emitted text passes through, and the publication
thresholds with their "Other in <parent>" roll-ups."""
from clio_engine.privacy.scrub import DEFAULT_RULES, Rule, Scrubber, luhn_valid
from clio_engine.privacy.thresholds import LevelPublication, publish

__all__ = ["Scrubber", "Rule", "DEFAULT_RULES", "luhn_valid", "LevelPublication", "publish"]
