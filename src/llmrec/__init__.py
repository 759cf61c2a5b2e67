"""llmrec: sequential recommendation with LLMs, and the baselines that keep them honest."""

__version__ = "0.1.0"
