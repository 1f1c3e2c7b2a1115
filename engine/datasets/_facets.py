"""Facet tables for the synthetic generator: domain popularity, countries, languages, platforms.

Numbers are invented but shaped like published Clio / Economic Index figures: coding is the largest
domain, the US the largest country, most summaries come from English-speaking accounts, and the API
is used mostly for software and data work while personal topics skew to mobile apps.
"""
from __future__ import annotations

# Share of conversations per domain before any per-user tilt.
DOMAIN_WEIGHTS = {
    "Software development": 0.22,
    "Writing and editing": 0.13,
    "Business, marketing and careers": 0.11,
    "Creative writing and roleplay": 0.10,
    "Personal advice and relationships": 0.09,
    "Science, math and teaching": 0.09,
    "Data analysis": 0.07,
    "Travel, food and leisure": 0.07,
    "Health, fitness and nutrition": 0.06,
    "Languages and translation": 0.06,
}

# country: (share of users, {language: share within the country}, android share of mobile use)
COUNTRIES = {
    "US": (0.300, {"English": 0.93, "Spanish": 0.07}, 0.40),
    "IN": (0.110, {"English": 0.80, "Hindi": 0.20}, 0.90),
    "GB": (0.070, {"English": 1.00}, 0.45),
    "BR": (0.050, {"Portuguese": 0.85, "English": 0.15}, 0.85),
    "DE": (0.050, {"German": 0.80, "English": 0.20}, 0.60),
    "CA": (0.040, {"English": 0.82, "French": 0.18}, 0.45),
    "FR": (0.040, {"French": 0.85, "English": 0.15}, 0.60),
    "JP": (0.035, {"Japanese": 0.80, "English": 0.20}, 0.30),
    "KR": (0.030, {"Korean": 0.85, "English": 0.15}, 0.60),
    "AU": (0.030, {"English": 1.00}, 0.45),
    "MX": (0.025, {"Spanish": 0.90, "English": 0.10}, 0.80),
    "ES": (0.025, {"Spanish": 0.90, "English": 0.10}, 0.75),
    "PH": (0.020, {"English": 1.00}, 0.85),
    "IT": (0.020, {"Italian": 0.85, "English": 0.15}, 0.70),
    "NG": (0.020, {"English": 1.00}, 0.90),
    "ID": (0.020, {"Indonesian": 0.80, "English": 0.20}, 0.90),
    "SG": (0.015, {"English": 0.75, "Chinese": 0.25}, 0.50),
    "TW": (0.015, {"Chinese": 0.85, "English": 0.15}, 0.60),
}

# Multiplicative tilts of DOMAIN_WEIGHTS for a user's home domain, by country ...
COUNTRY_DOMAIN_TILT = {
    "IN": {"Software development": 1.6, "Science, math and teaching": 1.5, "Business, marketing and careers": 1.2},
    "NG": {"Software development": 1.3, "Science, math and teaching": 1.4},
    "US": {"Business, marketing and careers": 1.2, "Personal advice and relationships": 1.2},
    "DE": {"Data analysis": 1.3},
    "JP": {"Creative writing and roleplay": 1.4},
    "KR": {"Creative writing and roleplay": 1.2, "Languages and translation": 1.2},
}
# ... and for accounts whose language is not English (they translate and study languages more).
NON_ENGLISH_TILT = {"Languages and translation": 3.0, "Writing and editing": 0.8}

PLATFORMS = ("web", "ios", "android", "api")
# domain: (web, mobile, api); mobile is split into ios/android by the country's android share.
DOMAIN_PLATFORM = {
    "Software development": (0.55, 0.10, 0.35),
    "Data analysis": (0.62, 0.10, 0.28),
    "Writing and editing": (0.60, 0.28, 0.12),
    "Business, marketing and careers": (0.62, 0.23, 0.15),
    "Creative writing and roleplay": (0.50, 0.30, 0.20),
    "Personal advice and relationships": (0.35, 0.62, 0.03),
    "Health, fitness and nutrition": (0.40, 0.57, 0.03),
    "Travel, food and leisure": (0.42, 0.55, 0.03),
    "Languages and translation": (0.40, 0.52, 0.08),
    "Science, math and teaching": (0.55, 0.40, 0.05),
}

# Sentence openings: (text, relative weight, takes a gerund?). The first is Clio's own phrasing.
OPENINGS = (
    ("The user's overall request is to", 8, False),
    ("The user's overall request for the assistant is to", 3, False),
    ("The user asked the assistant to", 3, False),
    ("The user wants to", 3, False),
    ("The user wanted the assistant to", 1, False),
    ("The user is trying to", 2, False),
    ("The user needs to", 1, False),
    ("The user would like to", 1, False),
    ("The user requested assistance to", 1, False),
    ("The user's main goal is to", 2, False),
    ("The user's request is to", 2, False),
    ("The user came to the assistant to", 1, False),
    ("The user is looking for a way to", 1, False),
    ("In this conversation, the user asks the assistant to", 1, False),
    ("The user hoped to", 1, False),
    ("The user asked for help with", 4, True),
    ("The user wants help with", 2, True),
    ("The user requested assistance with", 2, True),
    ("The user's overall request is help with", 1, True),
    ("The conversation is about", 2, True),
    ("The user needs support with", 1, True),
    ("The user sought guidance on", 1, True),
    ("The user is interested in", 1, True),
)

# Closing clauses that fit any request; each domain adds its own (`~` lines in the topic data).
GLOBAL_TAILS = (
    "and asked for a step-by-step explanation",
    "and wanted a short, clear answer",
    "and asked for concrete examples",
    "and asked the assistant to explain its reasoning",
    "asking for several options to choose from",
    "and followed up with clarifying questions",
    "and asked for a checklist",
    "and said it was fairly urgent",
    "and mentioned it was their first time doing this",
    "and asked the assistant to double-check the result",
)
