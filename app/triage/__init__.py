"""Classification of issues: text in, PTM / theme / sub-theme scores out."""
