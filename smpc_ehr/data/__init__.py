"""Party data: loading a hospital's files, cohort filters and counts, synthetic EHRs.

A leaf package (numpy and pyarrow only): the party process loads its data once with
``load_party_data`` and evaluates cohorts locally, in plaintext, before any MPC.
See docs/data.md for the file format, cohort semantics and the generator's model.
"""

from smpc_ehr.data.codes import normalize_pattern
from smpc_ehr.data.cohort import (
    AGE_BANDS,
    DEFAULT_AS_OF,
    STRATA,
    CohortFilter,
    age_in_years,
    cell_labels,
    cohort_mask,
    count_cells,
)
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.records import SEXES, PartyData
from smpc_ehr.data.synth import FederationTruth, generate_federation

__all__ = [
    "AGE_BANDS",
    "DEFAULT_AS_OF",
    "SEXES",
    "STRATA",
    "CohortFilter",
    "FederationTruth",
    "PartyData",
    "age_in_years",
    "cell_labels",
    "cohort_mask",
    "count_cells",
    "generate_federation",
    "load_party_data",
    "normalize_pattern",
]
