"""Study protocol templates (template.py) and their typed parameters (params.py)."""
