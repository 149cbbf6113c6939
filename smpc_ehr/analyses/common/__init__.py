"""Building blocks shared by several analyses: disclosure rules, cohort variables,
pooled moments, secret rows and model evaluation."""
