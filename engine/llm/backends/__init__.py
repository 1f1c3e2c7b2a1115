"""Backends of the generator (`base.Backend`): openai, anthropic, transformers; each imports its SDK lazily."""
