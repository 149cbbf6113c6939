"""Building blocks shared by several analyses: disclosure rules, cohort variables,
pooled and released moments, public figures among a program's outputs, secret rows,
model evaluation and the renderers' text helpers. An analysis package imports these,
never another analysis package."""
