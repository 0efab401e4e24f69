"""PTM Triage: a GitHub App that labels issues about reusing pre-trained models."""

__version__ = "0.1.0"
