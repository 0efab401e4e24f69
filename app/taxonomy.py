"""The label space of ../shared/taxonomy.md: theme and sub-theme codes and names.

Every other module takes codes and their order from here.
"""

from __future__ import annotations

THEMES: dict[str, str] = {
    "MU": "Model Usage",
    "PQ": "Model Performance and Output Quality",
    "SE": "Software Environment",
    "DI": "Developer Information and Documentation",
    "HR": "Hardware and Computation Resource",
    "RC": "Model Resource and Configuration",
    "FN": "Model Functionality Enhancement Needs",
}

SUBTHEMES: dict[str, str] = {
    "MU1": "Model I/O Handling",
    "MU2": "Model Initialization and Usage",
    "MU3": "Model Prompting and Command-Line",
    "MU4": "Model API Call",
    "MU5": "GUI",
    "PQ1": "Poor Model Output",
    "PQ2": "Model Training and Evaluation",
    "PQ3": "Processing Time",
    "SE1": "Dependency Incompatibility",
    "SE2": "Dependency Import and Usage",
    "SE3": "Unsupported or Missing Dependencies",
    "SE4": "Dependency Installation and Management",
    "DI1": "Needs for User Guidance",
    "DI2": "Generic Documentation",
    "DI3": "Needs for Other Resources and Information",
    "DI4": "Tutorial and Demo",
    "HR1": "Memory Usage",
    "HR2": "Hardware Initialization and Execution Management",
    "HR3": "Hardware Incompatibility",
    "HR4": "Computation Utilization",
    "RC1": "Missing Model Resource",
    "RC2": "Inability to Read-Write Model Resource",
    "RC3": "Model Resource Download",
    "RC4": "Model Resource Storage Management",
    "RC5": "Model Resource Format and Integrity",
    "RC6": "Model Configuration Management",
    "RC7": "Model Resource Accessibility and Security",
    "FN1": "Additional Model Support Needs",
    "FN2": "Model Supplementary Functionality Needs",
    "FN3": "Model Core Functionality Expansion Needs",
    "FN4": "Needs for Incorporation with External Software",
    "FN5": "Model Replacement Needs",
}

ISSUE_TYPES: tuple[str, ...] = ("bug", "enhancement", "question")
"""The issue types of the seBERT model the paper used to type every issue."""

THEME_CODES: tuple[str, ...] = tuple(THEMES)
SUBTHEME_CODES: tuple[str, ...] = tuple(SUBTHEMES)


def theme_of(subtheme: str) -> str:
    """The theme code a sub-theme code belongs to (``"HR1"`` -> ``"HR"``)."""
    theme = subtheme.rstrip("0123456789")
    if theme not in THEMES or subtheme not in SUBTHEMES:
        raise ValueError(f"unknown sub-theme code: {subtheme!r}")
    return theme
