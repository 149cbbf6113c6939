"""k-means's tidy rows: per cluster (`group` cluster=i) its size, its centroid by
feature name (`variable`, statistic `centroid`) and its profile means (statistic
`profile_mean`); then n, missing, inertia and the Lloyd steps."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, row


def tidy_kmeans(result: dict[str, Any]) -> list[Row]:
    features = result["features"]
    hidden = set(result.get("suppressed_clusters") or [])
    profiles = result.get("profiles") or []
    rows: list[Row] = []
    for i, centroid in enumerate(result["centroids"]):
        group = f"cluster={i}"
        rows.append(row("n", result["sizes"][i], group=group, suppressed=i in hidden))
        values = centroid or [None] * len(features)
        for name, value in zip(features, values, strict=True):
            rows.append(row("centroid", value, group=group, variable=name, suppressed=i in hidden))
        for name, value in (profiles[i] if i < len(profiles) else {}).items():
            rows.append(
                row("profile_mean", value, group=group, variable=name, suppressed=value is None)
            )
    rows.append(row("n", result.get("n"), suppressed=result.get("n") is None))
    rows.append(count_row("missing", result.get("missing")))
    inertia = result.get("inertia")
    units = str(result.get("inertia_units", ""))
    rows.append(row("inertia", inertia, suppressed=inertia is None, note=units))
    rows.append(row("iterations", result.get("iterations")))
    rows.append(row("converged", int(bool(result.get("converged")))))
    return rows
