"""The evaluation report of issue 19 (`python scripts/evaluate.py`): one module per
section (accuracy, overhead, scalability, utility, reidentification), each with
`run(context) -> Section` (section.py), assembled into report.md, report.html and
figures.json by report.py."""
