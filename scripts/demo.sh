#!/usr/bin/env bash
# The demo: synthetic data for three hospitals, a local federation of real processes
# over mutual TLS, joint rare-disease counts and a "Table 1" of statistics and tests,
# next to plaintext checks computed separately from the generated files, survival curves
# drawn to a PNG, then the federation is brought down.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh

DATA=${DEMO_DATA:-demo-data}
STATE=${DEMO_STATE:-.smpc-ehr-demo}
if [ ! -f "$DATA/truth.json" ]; then
  smpc-ehr synth --parties st-anna,city-general,university-clinic --patients 30000 --seed 7 --out "$DATA"
fi
smpc-ehr local down --state "$STATE" >/dev/null 2>&1 || true
smpc-ehr local up --data "$DATA" --state "$STATE"
trap 'smpc-ehr local down --state "$STATE"' EXIT

show() {  # show TITLE CODES BY [BACKEND]
  echo
  echo "=== $1"
  local args=(--set "codes=$2")
  [ -n "$3" ] && args+=(--set "by=$3")
  [ -n "${4:-}" ] && args+=(--backend "$4")
  echo "\$ smpc-ehr run protocols/rare_disease_count.toml ${args[*]}"
  smpc-ehr run protocols/rare_disease_count.toml "${args[@]}" --state "$STATE"
  echo "--- plaintext check (pooled CSV files, computed separately; MPC never sees this):"
  python scripts/plaintext_truth.py --data "$DATA" --codes "$2" --by "$3" --text
}

show "Gaucher disease (E75.22) across all hospitals" "E75.22" ""
show "Gaucher disease by sex and age band: small cells stay suppressed" "E75.22" "sex,age_band"
show "Lysosomal storage disorders (prefix E75.2) by sex" "E75.2" "sex"
show "Type 2 diabetes (E11) by age band" "E11" "age_band"
show "The same Gaucher count with the CrypTen backend (Beaver triples from the dealer)" "E75.22" "" crypten
echo
smpc-ehr run protocols/rare_disease_count.toml --set codes=E75.22,E75.21 --json --state "$STATE"

echo
echo "=== Differential privacy: the Type 2 diabetes count by age band with epsilon = 1"
echo "\$ smpc-ehr run protocols/rare_disease_count.toml --set codes=E11 --set by=age_band --set epsilon=1"
smpc-ehr run protocols/rare_disease_count.toml --set codes=E11 --set by=age_band --set epsilon=1 \
  --state "$STATE"
echo "--- privacy budget spent at each hospital:"
smpc-ehr budget --state "$STATE"

echo
echo "=== Table 1: lab values by 30-day readmission, across all hospitals"
echo "\$ smpc-ehr run protocols/summary.toml --set variables=bmi,hba1c,sbp --set by=readmit_30d"
smpc-ehr run protocols/summary.toml --set variables=bmi,hba1c,sbp --set by=readmit_30d --state "$STATE"
echo "--- plaintext check (pooled CSV files, computed separately):"
python scripts/plaintext_summary.py --data "$DATA" --variables bmi,hba1c,sbp --by readmit_30d
echo
echo "=== The same as a paper's Table 1 (complementary suppression decided inside MPC)"
echo "\$ smpc-ehr run protocols/table1.toml --set variables=bmi,sbp,hba1c --set nonnormal=hba1c --set grid=3,12,0.1 --set categorical=sex,age_band --set group=readmit_30d"
smpc-ehr run protocols/table1.toml --set variables=bmi,sbp,hba1c --set nonnormal=hba1c \
  --set grid=3,12,0.1 --set categorical=sex,age_band --set group=readmit_30d --state "$STATE"
echo
echo "=== Is HbA1c higher in readmitted patients? (Welch t-test)"
smpc-ehr run protocols/ttest.toml --set variable=hba1c --set group=readmit_30d --state "$STATE"
echo
echo "=== Odds of readmission with type 2 diabetes (E11), on CrypTen"
smpc-ehr run protocols/odds_ratio.toml --set exposure=condition --set condition_codes=E11 \
  --set outcome=readmit_30d --backend crypten --state "$STATE"

echo
echo "=== Survival after chronic ischemic heart disease (I25) by sex: Kaplan-Meier, log-rank"
echo "\$ smpc-ehr run protocols/kaplan_meier.toml --set codes=I25 --set group=sex --set time_unit=year --set horizon=20 --plot $STATE/km.png"
smpc-ehr run protocols/kaplan_meier.toml --set codes=I25 --set group=sex --set time_unit=year \
  --set horizon=20 --plot "$STATE/km.png" --state "$STATE"
echo "--- the curves with 95% CIs and the numbers at risk: $STATE/km.png"
echo
echo "=== Cox regression: the hazard of death after I25 by HbA1c and BMI (Breslow ties)"
echo "\$ smpc-ehr run protocols/cox_regression.toml --set codes=I25 --set features=hba1c,bmi --set time_unit=year --set horizon=20"
smpc-ehr run protocols/cox_regression.toml --set codes=I25 --set features=hba1c,bmi \
  --set time_unit=year --set horizon=20 --state "$STATE"
