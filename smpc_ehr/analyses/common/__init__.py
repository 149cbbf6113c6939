"""Building blocks shared by several analyses: disclosure rules, cohort variables,
pooled and released moments, public figures among a program's outputs, secret rows,
quantile grids and their secure search, Welch's test from released moments,
model evaluation and the renderers' text helpers. An analysis package imports these,
never another analysis package."""
