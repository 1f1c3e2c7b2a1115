"""Privacy layer (SPEC §4): the PII scrubber every emitted text passes through, and the publication
thresholds with their "Other in <parent>" roll-ups."""
from clio_engine.privacy.scrub import DEFAULT_RULES, SCRUBBERS, Rule, Scrubber, iban_valid, luhn_valid, make_scrubber, ssn_valid
from clio_engine.privacy.thresholds import LevelPublication, publish

__all__ = ["Scrubber", "Rule", "DEFAULT_RULES", "SCRUBBERS", "make_scrubber", "luhn_valid", "iban_valid", "ssn_valid", "LevelPublication", "publish"]
