"""Claims-like sample data: `fraudflow sample-data DIR` writes claims.csv and customers.csv.

The files have exactly the columns, order, types and value sets of AWS's synthetic auto-insurance claims data
(see ../shared/data/aws-synthetic-claims/SOURCE.md), including its quirks: the string "None" for a missing
driver_relationship, collision_type or authorities_contacted (pandas reads it as missing), the misspelled gender
"Unkown" and the column "policy_deductable". Marginal frequencies follow the AWS data; fraud (about 3%) follows a
logistic model of plausible drivers (prior claims and insurers, young and new customers, no witnesses, no injuries,
no police report, thefts) strong enough for a shallow XGBoost model to reach a test ROC-AUC near 0.9, plus a mild
gender effect so bias metrics are not trivially zero.

Generation is vectorised numpy; CSVs are written in chunks through byte tables (no per-value Python formatting),
so a million rows take a few seconds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudflow.errors import UserError

if TYPE_CHECKING:
    import numpy as np

CLAIMS_COLUMNS = [
    "policy_id",
    "driver_relationship",
    "incident_type",
    "collision_type",
    "incident_severity",
    "authorities_contacted",
    "num_vehicles_involved",
    "num_injuries",
    "num_witnesses",
    "police_report_available",
    "injury_claim",
    "vehicle_claim",
    "total_claim_amount",
    "incident_month",
    "incident_day",
    "incident_dow",
    "incident_hour",
    "fraud",
]
CUSTOMERS_COLUMNS = [
    "policy_id",
    "customer_age",
    "months_as_customer",
    "num_claims_past_year",
    "num_insurers_past_5_years",
    "policy_state",
    "policy_deductable",
    "policy_annual_premium",
    "policy_liability",
    "customer_zip",
    "customer_gender",
    "customer_education",
    "auto_year",
]
MIN_ROWS = 10
FRAUD_RATE = 0.03
CHUNK_ROWS = 100_000  # rows generated and written at a time: ~100 MB peak, the fastest size measured
SIGNAL = 1.4  # scales every fraud driver: a 100-round depth-3 XGBoost reaches a test AUC of about 0.9

# Frequencies observed in the AWS data (counts out of 5000 unless noted).
STATES = {"CA": 3134, "WA": 607, "AZ": 539, "OR": 363, "NV": 222, "ID": 135}
ZIP_RANGES = {
    "CA": (90001, 96150),
    "WA": (98001, 99362),
    "AZ": (85003, 86538),
    "OR": (97004, 97914),
    "NV": (89002, 89883),
    "ID": (83201, 83869),
}
GENDERS = {"Male": 2281, "Female": 2208, "Unkown": 420, "Other": 91}  # sic
EDUCATION = {
    "Bachelor": 2211,
    "High School": 1264,
    "Advanced Degree": 952,
    "Associate": 475,
    "Below High School": 98,
}
LIABILITY = {"25/50": 1697, "15/30": 1631, "30/60": 1137, "100/200": 535}
DEDUCTABLE = {750: 4950, 800: 28, 850: 9, 900: 3, 950: 5, 1000: 1, 1050: 2, 1100: 2}
PREMIUM = dict(
    zip(
        range(2200, 3001, 50),
        [1, 2, 2, 10, 22, 33, 65, 73, 125, 148, 154, 162, 180, 136, 141, 166, 3580],
        strict=True,
    )
)
AUTO_YEAR = dict(
    zip(
        range(2001, 2021),
        [3, 14, 18, 16, 31, 23, 53, 60, 67, 101, 142, 224, 276, 425, 531, 602, 682, 673, 581, 478],
        strict=True,
    )
)
CLAIMS_PAST_YEAR = {0: 4665, 1: 268, 2: 43, 3: 17, 4: 3, 5: 2, 6: 2}
INSURERS = {1: 3860, 2: 562, 3: 309, 4: 186, 5: 83}
INCIDENT_TYPES = {"Collision": 4272, "Break-in": 484, "Theft": 244}
COLLISION_TYPES = {"Front": 2109, "Rear": 1105, "Side": 1058}  # of collisions; "None" otherwise
DRIVERS = {"Self": 3418, "Spouse": 428, "Child": 226, "Other": 200}  # of collisions; "None" otherwise
SEVERITY = {"Minor": 2100, "Major": 1698, "Totaled": 1202}
VEHICLES = {1: 488, 2: 2308, 3: 1212, 4: 241, 5: 22, 6: 1}  # of collisions; thefts and break-ins involve 1
AUTHORITIES = {"Police": 2826, "None": 1165, "Ambulance": 146, "Fire": 135}  # of collisions
WITNESSES = {0: 2606, 1: 1112, 2: 812, 3: 328, 4: 107, 5: 35}
MONTHS = dict(zip(range(1, 13), [511, 368, 410, 344, 360, 331, 366, 411, 350, 523, 548, 478], strict=True))
DOW = dict(zip(range(7), [847, 868, 754, 758, 802, 469, 502], strict=True))
HOURS = dict(
    zip(
        range(24),
        [
            67,
            67,
            94,
            86,
            153,
            232,
            229,
            247,
            297,
            288,
            294,
            306,
            291,
            311,
            330,
            334,
            336,
            277,
            223,
            192,
            147,
            84,
            61,
            54,
        ],
        strict=True,
    )
)
VEHICLE_CLAIM_MEDIAN = {"Minor": 9500.0, "Major": 14500.0, "Totaled": 30000.0}
INJURY_RATE = {"Minor": 0.05, "Major": 0.6, "Totaled": 1.5}
VEHICLE_CLAIM_RANGE = (1000.0, 51051.62574949059)
INJURY_CLAIM_RANGE = (300, 576300)


def generate(out_dir: Path, rows: int = 5000, seed: int = 0) -> dict:
    """Write out_dir/claims.csv and out_dir/customers.csv; return {"rows", "frauds", "files", "seed"}.

    Rows are generated and written CHUNK_ROWS at a time, each chunk from its own random stream (seed, chunk), so
    memory stays bounded whatever the row count and the output depends only on (rows, seed).
    """
    import numpy as np

    if rows < MIN_ROWS:
        raise UserError.single("FF901", f"--rows must be at least {MIN_ROWS}, got {rows}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"claims": out_dir / "claims.csv", "customers": out_dir / "customers.csv"}
    tmps = {name: p.with_name(f".{p.name}.tmp") for name, p in paths.items()}
    frauds, intercept = 0, None
    with open(tmps["claims"], "wb") as fc, open(tmps["customers"], "wb") as fu:
        fc.write((",".join(CLAIMS_COLUMNS) + "\n").encode())
        fu.write((",".join(CUSTOMERS_COLUMNS) + "\n").encode())
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            n = min(CHUNK_ROWS, rows - start)
            rng = np.random.default_rng([seed, index])
            customers, claims = _customers(rng, n), _claims(rng, n)
            score = _fraud_score(customers, claims)
            if intercept is None:  # calibrated once, on the first chunk
                intercept = _intercept(score)
            claims["fraud"] = (rng.random(n) < 1 / (1 + np.exp(-(score + intercept)))).astype(np.int64)
            frauds += int(claims["fraud"].sum())
            customers["policy_id"] = claims["policy_id"] = np.arange(start + 1, start + n + 1, dtype=np.int64)
            fc.write(_csv_rows([claims[c] for c in CLAIMS_COLUMNS]))
            fu.write(_csv_rows([customers[c] for c in CUSTOMERS_COLUMNS]))
    for name, path in paths.items():
        os.replace(tmps[name], path)
    return {"rows": rows, "frauds": frauds, "files": {k: str(v) for k, v in paths.items()}, "seed": seed}


def command(args: argparse.Namespace) -> int:
    """`fraudflow sample-data DIR [--rows N] [--seed S]`."""
    summary = generate(Path(args.dir), rows=args.rows, seed=args.seed)
    rate = summary["frauds"] / summary["rows"]
    print(
        f"wrote {summary['rows']} claims ({summary['frauds']} frauds, {rate:.1%}) to "
        f"{os.path.join(args.dir, 'claims.csv')} and customers.csv (seed {summary['seed']})"
    )
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Columns. A categorical column is a Cat (codes into a vocabulary) so it can be written through a byte table.


class Cat:
    def __init__(self, codes: np.ndarray, vocab: list[str]):
        self.codes, self.vocab = codes, vocab

    def is_(self, value: str) -> np.ndarray:
        return self.codes == self.vocab.index(value)


def _choice(rng: np.random.Generator, n: int, freq: dict) -> np.ndarray:
    """Indexes into list(freq), drawn with the given frequencies."""
    import numpy as np

    p = np.array(list(freq.values()), dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _values(rng: np.random.Generator, n: int, freq: dict) -> np.ndarray:
    import numpy as np

    return np.array(list(freq), dtype=np.int64)[_choice(rng, n, freq)]


def _cat(rng: np.random.Generator, n: int, freq: dict) -> Cat:
    return Cat(_choice(rng, n, freq), list(freq))


def _customers(rng: np.random.Generator, n: int) -> dict[str, Any]:
    import numpy as np

    age = np.clip(np.rint(rng.normal(44, 13.5, n)), 18, 70).astype(np.int64)
    # Tenure grows with age (correlation about 0.55 in the AWS data).
    months = np.clip(np.rint((age - 16) * 12 * rng.beta(1.6, 4.2, n)), 1, 495).astype(np.int64)
    state = _cat(rng, n, STATES)
    lo = np.array([ZIP_RANGES[s][0] for s in STATES])[state.codes]
    hi = np.array([ZIP_RANGES[s][1] for s in STATES])[state.codes]
    return {
        "customer_age": age,
        "months_as_customer": months,
        "num_claims_past_year": _values(rng, n, CLAIMS_PAST_YEAR),
        "num_insurers_past_5_years": _values(rng, n, INSURERS),
        "policy_state": state,
        "policy_deductable": _values(rng, n, DEDUCTABLE),
        "policy_annual_premium": _values(rng, n, PREMIUM),
        "policy_liability": _cat(rng, n, LIABILITY),
        "customer_zip": rng.integers(lo, hi + 1),
        "customer_gender": _cat(rng, n, GENDERS),
        "customer_education": _cat(rng, n, EDUCATION),
        "auto_year": _values(rng, n, AUTO_YEAR),
    }


def _claims(rng: np.random.Generator, n: int) -> dict[str, Any]:
    import numpy as np

    kind = _cat(rng, n, INCIDENT_TYPES)
    collision = kind.is_("Collision")
    # Thefts and break-ins have no collision type and no driver: the AWS file writes "None" for both.
    collision_type = _with_none(_cat(rng, n, COLLISION_TYPES), ~collision)
    driver = _with_none(_cat(rng, n, DRIVERS), ~collision)
    vehicles = np.where(collision, _values(rng, n, VEHICLES), 1)
    severity = _cat(rng, n, SEVERITY)
    authorities = _cat(rng, n, AUTHORITIES)
    police = authorities.vocab.index("Police")
    # Thefts are always reported to the police, break-ins nearly always (93%).
    to_police = kind.is_("Theft") | (kind.is_("Break-in") & (rng.random(n) < 0.93))
    authorities.codes = np.where(to_police, police, np.where(collision, authorities.codes, 1))
    # Only a police call yields a report, 60% of the time.
    report = Cat(((authorities.codes == police) & (rng.random(n) < 0.6)).astype(np.int64), ["No", "Yes"])
    injury_rate = np.array([INJURY_RATE[s] for s in SEVERITY])[severity.codes]
    injuries = np.minimum(rng.poisson(injury_rate), 4).astype(np.int64)
    injury_claim = np.clip(np.rint(rng.lognormal(np.log(14600), 1.0, n) / 100) * 100, *INJURY_CLAIM_RANGE)
    vehicle_claim = np.clip(
        rng.lognormal(np.log(np.array([VEHICLE_CLAIM_MEDIAN[s] for s in SEVERITY]))[severity.codes], 0.45),
        *VEHICLE_CLAIM_RANGE,
    )
    injury_claim = injury_claim.astype(np.int64)
    return {
        "driver_relationship": driver,
        "incident_type": kind,
        "collision_type": collision_type,
        "incident_severity": severity,
        "authorities_contacted": authorities,
        "num_vehicles_involved": vehicles.astype(np.int64),
        "num_injuries": injuries,
        "num_witnesses": _values(rng, n, WITNESSES),
        "police_report_available": report,
        "injury_claim": injury_claim,
        "vehicle_claim": vehicle_claim,
        "total_claim_amount": injury_claim + vehicle_claim,
        "incident_month": _values(rng, n, MONTHS),
        "incident_day": rng.integers(1, 32, n),
        "incident_dow": _values(rng, n, DOW),
        "incident_hour": _values(rng, n, HOURS),
    }


def _with_none(col: Cat, missing: np.ndarray) -> Cat:
    import numpy as np

    return Cat(np.where(missing, len(col.vocab), col.codes), col.vocab + ["None"])


def _fraud_score(cust: dict, claims: dict) -> np.ndarray:
    """The fraud log-odds without intercept: `generate` solves the intercept so that about FRAUD_RATE of rows are
    frauds, then draws each row's label."""
    import numpy as np

    gender = cust["customer_gender"]
    score = (
        0.55 * (cust["num_insurers_past_5_years"] - 1)
        + 0.7 * cust["num_claims_past_year"]
        - 0.045 * (cust["customer_age"] - 44)
        - 1.1 * np.log1p(cust["months_as_customer"] / 24)
        - 0.9 * (claims["num_witnesses"] >= 2)
        - 1.0 * (claims["num_injuries"] > 0)
        + 0.8 * (claims["police_report_available"].codes == 0)
        + 0.7 * claims["incident_type"].is_("Theft")
        + 0.4 * claims["incident_type"].is_("Break-in")
        - 0.5 * claims["incident_severity"].is_("Totaled")
        - 0.5 * np.log(claims["vehicle_claim"] / 15000)
        + 0.35 * gender.is_("Male")  # the mild gender effect
        - 0.3 * (gender.is_("Unkown") | gender.is_("Other"))
    )
    return SIGNAL * score


def _intercept(score: np.ndarray) -> float:
    """Bisection for the intercept giving a mean fraud probability of FRAUD_RATE (on at most 100k rows)."""
    import numpy as np

    sample = score[:100_000]
    lo, hi = -20.0, 20.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(sample + mid)))) < FRAUD_RATE:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ---------------------------------------------------------------------------------------------------------------
# CSV writing through byte tables: each column becomes a fixed-width block of bytes, padded with NUL bytes that
# are dropped at the end, so no value goes through Python's string formatting.


def _csv_rows(columns: list[Any]) -> bytes:
    """CSV lines (no header) for equally long columns."""
    import numpy as np

    blocks = [_bytes_block(col) for col in columns]
    out = np.zeros((blocks[0].shape[0], sum(b.shape[1] + 1 for b in blocks)), dtype=np.uint8)
    at = 0
    for block in blocks:
        out[:, at : at + block.shape[1]] = block
        at += block.shape[1]
        out[:, at] = ord(",")
        at += 1
    out[:, -1] = ord("\n")
    flat = out.reshape(-1)
    return flat[flat != 0].tobytes()


def _bytes_block(col: Any) -> np.ndarray:
    import numpy as np

    if isinstance(col, Cat):
        return _vocab_table(col.vocab)[col.codes]
    if np.issubdtype(col.dtype, np.integer):
        return _int_block(col)
    return _float_block(col)


def _vocab_table(vocab: list[str]) -> np.ndarray:
    import numpy as np

    encoded = [v.encode() for v in vocab]
    table = np.zeros((len(vocab), max(len(e) for e in encoded)), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, : len(e)] = list(e)
    return table


def _int_block(values: np.ndarray) -> np.ndarray:
    """Non-negative integers as right-aligned digits; leading positions NUL (dropped later)."""
    import numpy as np

    values = values.astype(np.int64)
    if values.size and values.min() < 0:
        raise ValueError("negative values are not generated")
    width = len(str(int(values.max()))) if values.size else 1
    out = np.zeros((len(values), width), dtype=np.uint8)
    rest = values.copy()
    for k in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 10)
        out[:, k] = digit + ord("0")
        if k < width - 1:
            # A leading zero is padding, except the units digit (k == width - 1) of 0.
            lead = values < 10 ** (width - k - 1)
            out[lead, k] = 0
    return out


def _float_block(values: np.ndarray, decimals: int = 6) -> np.ndarray:
    """Non-negative floats with a fixed number of decimals (pandas reads them back as float64)."""
    import numpy as np

    scaled = np.rint(values * 10**decimals).astype(np.int64)
    whole, frac = np.divmod(scaled, 10**decimals)
    head = _int_block(whole)
    tail = np.zeros((len(values), decimals + 1), dtype=np.uint8)
    tail[:, 0] = ord(".")
    for k in range(decimals, 0, -1):
        frac, digit = np.divmod(frac, 10)
        tail[:, k] = digit + ord("0")
    return np.hstack([head, tail])
