"""The generative model behind the synthetic EHR: populations, phenotypes, diagnoses.

Kept apart from the file writing so the parameters can be read in one place; every
number here is copied into truth.json so tests and demos can check analyses against it.
Values are plausible for a hospital population, not calibrated to any real registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_AGE = 104
PHENOTYPES: tuple[str, ...] = ("lean", "metabolic", "cardiorenal", "dyslipidaemic")
# Adult means of each feature per phenotype (same order as PHENOTYPES); units:
# bmi kg/m2, hba1c %, sbp mmHg, ldl mg/dL, creatinine mg/dL.
PHENOTYPE_CENTRES: dict[str, tuple[float, ...]] = {
    "bmi": (23.5, 33.0, 28.5, 27.0),
    "hba1c": (5.4, 7.4, 6.1, 5.7),
    "sbp": (121.0, 138.0, 152.0, 131.0),
    "ldl": (105.0, 130.0, 115.0, 170.0),
    "creatinine": (0.85, 1.0, 1.9, 0.9),
}
FEATURE_SD = {"bmi": 3.5, "hba1c": 0.6, "sbp": 12.0, "ldl": 25.0, "creatinine_log": 0.18}
FEATURE_DECIMALS = {"bmi": 1, "hba1c": 1, "sbp": 0, "ldl": 0, "creatinine": 2}
FEATURE_RANGE = {
    "bmi": (12.0, 70.0),
    "hba1c": (4.0, 15.0),
    "sbp": (80.0, 230.0),
    "ldl": (30.0, 300.0),
    "creatinine": (0.2, 12.0),
}
# Completely-at-random missingness per column (the outcome too).
MISSING_RATES = {
    "bmi": 0.03,
    "hba1c": 0.08,
    "sbp": 0.02,
    "ldl": 0.10,
    "creatinine": 0.05,
    "readmit_30d": 0.01,
}
# Phenotype log-weights: base + slope * (age - 50) / 10; children are mostly "lean".
PHENOTYPE_BASE = (0.40, 0.25, 0.15, 0.20)
PHENOTYPE_AGE_SLOPE = (-0.25, 0.0, 0.35, 0.05)
CHILD_NON_LEAN_FACTOR = 0.15

SEX_PROBS = {"F": 0.51, "M": 0.485, "U": 0.005}
CHILD_FRACTION = 0.12

# Hospital roles: which case mix each party gets, by position in the roster.
ROLE_ORDER = ("general", "referral", "older")
ROLE_ADULT_AGE = {"general": (55.0, 19.0), "referral": (50.0, 20.0), "older": (66.0, 16.0)}
LSD_ENRICHMENT_RANGE = (20.0, 50.0)

RARE_PREVALENCE = {"E75.22": 1 / 40_000, "E75.21": 1 / 40_000, "E74.02": 1 / 100_000}
LYSOSOMAL = ("E75.22", "E75.21", "E74.02")
# Cystic fibrosis: per-patient prevalence by age band (young-heavy: survival is shorter).
CF_PREVALENCE_BY_AGE = {"0-29": 1 / 2_000, "30-44": 1 / 5_000, "45+": 1 / 25_000}
CF_CODES = {"E84.0": 0.45, "E84.1": 0.15, "E84.9": 0.40}
CF_SECOND_CODE_RATE = 0.3

# Readmission within 30 days: logistic model on (value - center) / scale per term.
READMIT_INTERCEPT = -2.4


@dataclass(frozen=True)
class Term:
    """One term of the readmission model: coef * (value - center) / scale."""

    name: str
    source: str
    center: float
    scale: float
    coef: float


READMIT_TERMS: tuple[Term, ...] = (
    Term("age", "age in whole years at as_of", 60.0, 10.0, 0.25),
    Term("male", "1 if sex == 'M' else 0", 0.0, 1.0, 0.15),
    Term("bmi", "patients column bmi", 28.0, 5.0, 0.10),
    Term("hba1c", "patients column hba1c", 6.0, 1.0, 0.20),
    Term("sbp", "patients column sbp", 130.0, 20.0, 0.10),
    Term("diabetes", "1 if any condition code starts with E11", 0.0, 1.0, 0.30),
    Term("ckd", "1 if any condition code starts with N18", 0.0, 1.0, 0.45),
    Term("heart_failure", "1 if any condition code starts with I50", 0.0, 1.0, 0.60),
)

ONSET_MISSING_RATE = 0.10
DUPLICATE_ROW_RATE = 0.03
ONSET_LOOKBACK_YEARS = 25


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def age_weights(role: str) -> np.ndarray:
    """Probability of each whole age 0..MAX_AGE: some children, adult-heavy, role-shifted."""
    ages = np.arange(MAX_AGE + 1, dtype=np.float64)
    mean, sd = ROLE_ADULT_AGE[role]
    adult = np.where(ages >= 18, np.exp(-0.5 * ((ages - mean) / sd) ** 2), 0.0)
    child = np.where(ages < 18, 1.0, 0.0)
    w = CHILD_FRACTION * child / child.sum() + (1 - CHILD_FRACTION) * adult / adult.sum()
    return w / w.sum()


def phenotype_probs(age: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Per-patient probabilities (n x 4) of each latent phenotype; ``mix`` is per-hospital."""
    base = np.log(np.asarray(PHENOTYPE_BASE) * mix)
    logits = base[None, :] + np.outer((age - 50) / 10, PHENOTYPE_AGE_SLOPE)
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w[age < 18, 1:] *= CHILD_NON_LEAN_FACTOR
    return w / w.sum(axis=1, keepdims=True)


def true_features(
    rng: np.random.Generator, age: np.ndarray, male: np.ndarray, phenotype: np.ndarray
) -> dict[str, np.ndarray]:
    """Feature values before missingness, rounded as written to the file."""
    n = len(age)
    child = age < 18
    c = {k: np.asarray(v)[phenotype] for k, v in PHENOTYPE_CENTRES.items()}
    d = age - 50.0
    bmi = np.where(child, 15.5 + 0.35 * age, c["bmi"] + 0.03 * d) + rng.normal(0, 1, n) * np.where(
        child, 2.5, FEATURE_SD["bmi"]
    )
    hba1c = c["hba1c"] + 0.008 * d + rng.normal(0, FEATURE_SD["hba1c"], n)
    sbp = np.where(child, 100.0 + 1.0 * age, c["sbp"] + 0.4 * d + 4.0 * male)
    sbp = sbp + rng.normal(0, FEATURE_SD["sbp"], n)
    ldl = np.where(child, 95.0, c["ldl"]) + rng.normal(0, FEATURE_SD["ldl"], n)
    creat_mean = np.where(child, 0.3 + 0.03 * age, c["creatinine"] * (1 + 0.004 * d))
    creat = creat_mean * np.where(male, 1.15, 1.0)
    creat = creat * np.exp(rng.normal(0, FEATURE_SD["creatinine_log"], n))
    raw = {"bmi": bmi, "hba1c": hba1c, "sbp": sbp, "ldl": ldl, "creatinine": creat}
    return {k: np.round(np.clip(v, *FEATURE_RANGE[k]), FEATURE_DECIMALS[k]) for k, v in raw.items()}


# Further vitals and labs, drawn after everything above so that adding them left the
# other columns of a given seed unchanged. Units: weight kg, heart_rate beats/min, hdl
# and triglycerides mg/dL, egfr mL/min/1.73 m2 (CKD-EPI 2021 from creatinine).
EXTRA_FEATURES: tuple[str, ...] = ("weight", "heart_rate", "hdl", "triglycerides", "egfr")
EXTRA_MISSING_RATES = {
    "weight": 0.04,
    "heart_rate": 0.02,
    "hdl": 0.12,
    "triglycerides": 0.12,
    "egfr": 0.05,
}
EXTRA_DECIMALS = {"weight": 1, "heart_rate": 0, "hdl": 0, "triglycerides": 0, "egfr": 0}


def extra_features(
    rng: np.random.Generator,
    age: np.ndarray,
    male: np.ndarray,
    phenotype: np.ndarray,
    feat: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Weight, heart rate, HDL, triglycerides and eGFR, correlated with the phenotype."""
    n = len(age)
    metabolic = phenotype == 1
    height = np.where(age < 18, 0.75 + 0.055 * age, np.where(male, 1.76, 1.63))
    height = height + rng.normal(0, 0.07, n)
    weight = feat["bmi"] * np.clip(height, 0.5, 2.1) ** 2
    heart_rate = 72.0 + 6.0 * metabolic + np.where(age < 18, 15.0, 0.0) + rng.normal(0, 10, n)
    hdl = 55.0 - 8.0 * male - 0.6 * (feat["bmi"] - 27.0) + rng.normal(0, 12, n)
    trig = np.exp(
        np.log(130.0) + 0.35 * metabolic + 0.02 * (feat["bmi"] - 27) + rng.normal(0, 0.4, n)
    )
    kappa = np.where(male, 0.9, 0.7)
    alpha = np.where(male, -0.302, -0.241)
    ratio = feat["creatinine"] / kappa
    egfr = (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.2
        * 0.9938 ** np.maximum(age, 18.0)
        * np.where(male, 1.0, 1.012)
    )
    raw = {
        "weight": np.clip(weight, 2.0, 300.0),
        "heart_rate": np.clip(heart_rate, 35.0, 200.0),
        "hdl": np.clip(hdl, 10.0, 150.0),
        "triglycerides": np.clip(trig, 20.0, 2000.0),
        "egfr": np.clip(egfr, 2.0, 200.0),
    }
    return {k: np.round(v, EXTRA_DECIMALS[k]) for k, v in raw.items()}


def common_condition_probs(
    age: np.ndarray, male: np.ndarray, feat: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-patient probability of each common diagnosis (age, sex and feature driven).

    Diagnoses that depend on earlier ones (heart failure, coronary disease) use the
    expected flags (probabilities) so all codes can be drawn independently afterwards.
    """
    adult = age >= 18
    p: dict[str, np.ndarray] = {}
    p["E11.9"] = np.where(adult, sigmoid(-0.5 + 3.0 * (feat["hba1c"] - 6.5)), 0.002)
    p["I10"] = np.where(adult, sigmoid(-0.6 + 0.12 * (feat["sbp"] - 140)), 0.005)
    p["E78.5"] = np.where(
        adult, sigmoid(-1.0 + 0.05 * (feat["ldl"] - 160) + 0.02 * (age - 50)), 0.01
    )
    p["N18.3"] = sigmoid(-2.0 + 3.0 * (feat["creatinine"] - 1.5) - 0.3 * male)
    p["J44.9"] = np.where(adult, sigmoid(-4.5 + 0.05 * (age - 40)), 0.0)
    cardio = 0.8 * p["I10"] + 0.8 * p["N18.3"]
    p["I50.9"] = np.where(adult, sigmoid(-5.0 + 0.06 * (age - 40) + cardio), 0.0)
    p["I25.10"] = np.where(
        adult,
        sigmoid(-4.5 + 0.06 * (age - 40) + 0.5 * p["E11.9"] + 0.5 * p["I10"] + 0.4 * male),
        0.0,
    )
    p["E66.9"] = np.where(feat["bmi"] >= 30, 0.6, 0.02)
    p["F32.9"] = np.where(adult, 0.10, 0.03)
    p["K21.9"] = np.where(adult, 0.10, 0.02)
    p["M54.50"] = np.where(adult, 0.08, 0.01)
    p["J45.909"] = np.where(adult, 0.06, 0.09)
    p["Z87.891"] = np.where(adult, 0.15, 0.0)
    return p


def cf_prevalence(age: np.ndarray) -> np.ndarray:
    """Per-patient cystic fibrosis probability from its age band."""
    young, middle, old = CF_PREVALENCE_BY_AGE.values()
    return np.where(age < 30, young, np.where(age < 45, middle, old))
