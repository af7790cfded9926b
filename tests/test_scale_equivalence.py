"""The 1M-row speed-ups of issue 16 change no output: each fast path is compared, bit for bit, with the slow
computation it replaced (kept here as the reference) on generated inputs, edge values included."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.model_selection import train_test_split

from tests._steps_util import hyperparameter_args, load_step

pp = load_step("preprocess")
ev = load_step("evaluate")
ex = load_step("explain")
bias = load_step("bias")
inference = load_step("inference")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------------------------ encoding

CATEGORY_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["a", "B b", "na", "3", "", "Yes", "No"]),
    st.integers(-3, 3),
    st.sampled_from([3.0, 2.5, float("nan"), -0.0, float("inf")]),
)
NUMBER_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["7", "x", -0.0]),
)


def reference_transform(df: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """transform's category encoding as it was: `_key` of every value, row by row."""
    fill = schema["missing"]["categorical"]
    out = pp.transform(df, {**schema, "ordinal": {}, "one_hot": {}, "features": list(schema["numeric"])})
    cols = {c: out[c].to_numpy() for c in out.columns}
    for c, spec in {**schema["ordinal"], **schema["one_hot"]}.items():
        raw = df[c].to_numpy().astype(object) if c in df.columns else np.full(len(df), np.nan, dtype=object)
        missing = pd.isna(raw)
        if fill is not None:
            raw, missing = np.where(missing, fill, raw), np.zeros(len(raw), dtype=bool)
        keys = [None if m else pp._key(v) for v, m in zip(raw, missing, strict=True)]
        if c in schema["ordinal"]:
            index = {v: i for i, v in enumerate(spec["values"])}
            cols[c] = np.array([-1 if k is None else index.get(k, -1) for k in keys], dtype="int64")
        else:
            for k, name in zip(spec["categories"], spec["columns"], strict=True):
                cols[name] = (np.array(keys, dtype=object) == k).astype("int64")
    return pd.DataFrame({f: cols[f] for f in schema["features"]}, columns=schema["features"])


def schema_for(fill: str | None) -> dict:
    return {
        "version": pp.SCHEMA_VERSION,
        "label": "y",
        "drop": [],
        "missing": {"categorical": fill, "numeric": "median"},
        "numeric": {"n": {"fill": 1.5, "integer": True}, "m": {"fill": None, "integer": False}},
        "one_hot": {
            "c": {"categories": ["3", "a", "b_b", "na"], "columns": ["c_3", "c_a", "c_b_b", "c_na"]},
        },
        "ordinal": {"o": {"values": ["No", "Yes", "3", "na"], "unknown": -1}},
        "drop_encoded": ["c_b_b"],
        "features": ["n", "m", "o", "c_3", "c_a", "c_na"],
    }


records = st.lists(
    st.fixed_dictionaries(
        {},
        optional={"n": NUMBER_VALUES, "m": NUMBER_VALUES, "o": CATEGORY_VALUES, "c": CATEGORY_VALUES},
    ),
    min_size=1,
    max_size=6,
)


def as_rows(frame: pd.DataFrame) -> bytes:
    return np.ascontiguousarray(np.asarray(frame, dtype=np.float64)).tobytes()


@SETTINGS
@given(batch=records, fill=st.sampled_from(["na", None]))
def test_transform_and_record_encoder_match_the_per_value_encoding(batch, fill):
    schema = schema_for(fill)
    columns = inference.raw_columns(schema)
    frame = inference.records_frame(batch, columns)
    try:
        expected = as_rows(reference_transform(frame, schema))
    except pp.StepError:  # a non-number in a numeric column: transform refuses it too
        with pytest.raises(pp.StepError):
            pp.transform(frame, schema)
        return
    assert as_rows(pp.transform(frame, schema)) == expected
    encoded = pp.record_encoder(schema)(batch)
    if encoded is not None:  # None: a value outside the plain cases, left to transform
        assert encoded.tobytes() == expected


def test_record_encoder_takes_the_plain_records_of_the_reference_data(aws_data):
    """The fast path is the common one: records as JSON carries the reference data are all plain."""
    df = pd.read_csv(aws_data / "claims.csv", nrows=200).merge(
        pd.read_csv(aws_data / "customers.csv"), on="policy_id", how="left"
    )
    train = df.iloc[:150]
    config = {
        "data": {"label": "fraud", "drop": ["customer_zip", "policy_id"]},
        "features": {
            "missing": {"categorical": "na", "numeric": "none"},
            "one_hot": ["driver_relationship", "incident_type", "collision_type", "policy_state"],
            "ordinal": {"police_report_available": ["No", "Yes"]},
        },
    }
    text = [c for c in df.columns if df[c].dtype.kind not in "biuf"]
    config["data"]["drop"] += [
        c for c in text if c not in config["features"]["one_hot"] + ["police_report_available"]
    ]
    schema = pp.fit(train, config)
    recs = json.loads(df.drop(columns=["fraud"]).to_json(orient="records"))
    encoded = pp.record_encoder(schema)(recs)
    assert encoded is not None
    frame = inference.records_frame(recs, inference.raw_columns(schema))
    assert encoded.tobytes() == as_rows(pp.transform(frame, schema))


@SETTINGS
@given(values=st.lists(CATEGORY_VALUES, min_size=1, max_size=12), fill=st.sampled_from(["na", None]))
def test_category_codes_key_each_value_as_key_does(values, fill):
    series = pd.Series(values, dtype=object)
    for candidate in (series, series.astype("category") if series.map(type).nunique() == 1 else series):
        codes, texts = pp.category_codes(candidate, fill)
        got = [texts[c] if c >= 0 else None for c in codes]
        want = [(pp._key(fill) if fill is not None else None) if pd.isna(v) else pp._key(v) for v in values]
        assert got == want


# ------------------------------------------------------------------------------------------------ CSV


@SETTINGS
@given(
    ints=hnp.arrays(np.int64, st.tuples(st.integers(0, 40), st.integers(1, 4))),
    floats=st.lists(
        st.one_of(st.floats(), st.sampled_from([1e16, 1e-5, -0.0, 0.1, 3.0])), min_size=40, max_size=40
    ),
)
def test_csv_bodies_are_what_pandas_writes(tmp_path_factory, ints, floats):
    n = ints.shape[0]
    frame = pd.DataFrame(ints, columns=[f"i{k}" for k in range(ints.shape[1])])
    frame.insert(1, "f", np.array(floats[:n], dtype=np.float64))
    folder = tmp_path_factory.mktemp("csv")
    for header in (False, True):
        pp._write_csv(folder / "out.csv", frame, header=header)
        want = io.StringIO()
        frame.to_csv(want, header=header, index=False)
        assert (folder / "out.csv").read_text() == want.getvalue()


TEXTS = st.one_of(
    st.none(), st.text(max_size=6), st.sampled_from(["a,b", 'say "hi"', "two\nlines", " x ", "é", ""])
)


@SETTINGS
@given(
    columns=st.lists(st.sampled_from(["int", "narrow", "float", "category"]), min_size=1, max_size=4),
    rows=st.integers(0, 30),
    data=st.data(),
)
def test_csv_of_mixed_frames_is_what_pandas_writes(tmp_path_factory, columns, rows, data):
    """train_raw.csv's columns too: categoricals of any strings (quotes, commas, newlines, missing values),
    narrow and wide integers, floats; one column (pandas quotes an empty row) is left to pandas."""
    frame = pd.DataFrame(index=range(rows))
    for k, kind in enumerate(columns):
        if kind == "category":
            values = data.draw(st.lists(TEXTS, min_size=rows, max_size=rows))
            frame[f"c{k}"] = pd.Series(values, dtype=object).astype("category")
        elif kind == "float":
            values = data.draw(st.lists(st.floats(), min_size=rows, max_size=rows))
            frame[f"c{k}"] = np.array(values, dtype=np.float64)
        else:
            bound = 3 if kind == "narrow" else 2**63 - 1
            values = data.draw(st.lists(st.integers(-bound - 1, bound), min_size=rows, max_size=rows))
            frame[f"c{k}"] = np.array(values, dtype=np.int64)
    folder = tmp_path_factory.mktemp("csv")
    for header in (False, True):
        pp._write_csv(folder / "out.csv", frame, header=header)
        want = io.StringIO()
        frame.to_csv(want, header=header, index=False)
        assert (folder / "out.csv").read_bytes() == want.getvalue().encode()


# ------------------------------------------------------------------------------------------------ split


@SETTINGS
@given(n=st.integers(100, 300), seed=st.integers(0, 50), stratify=st.booleans())
def test_split_by_positions_takes_the_rows_splitting_the_frame_took(n, seed, stratify):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"y": rng.permutation(np.arange(n) % 2), "t": rng.choice(["a", "b"], n)})
    df["t"] = df["t"].astype("category")
    config = {"data": {"label": "y"}, "split": {"train": 0.8, "validation": 0.1, "test": 0.1}}
    config["split"].update(seed=seed, stratify=stratify)
    try:
        train, val, test = pp.split_frame(df, config)
    except pp.StepError:  # a part drew one class (unstratified): refused, not split
        assume(False)
    n_test, n_val = round(0.1 * n), round(0.1 * n)
    strat = df["y"] if stratify else None
    rest, want_test = train_test_split(df, test_size=n_test, random_state=seed, stratify=strat)
    want_train, want_val = train_test_split(
        rest, test_size=n_val, random_state=seed, stratify=rest["y"] if stratify else None
    )
    for got, want in ((train, want_train), (val, want_val), (test, want_test)):
        pd.testing.assert_frame_equal(got, want)


# ------------------------------------------------------------------------------------------------ bootstrap


@SETTINGS
@given(
    n=st.integers(2, 80),
    ties=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_bootstrap_auc_from_counts_equals_the_rank_sum(n, ties, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 4, n) / 4.0 if ties else rng.random(n)
    idx = np.random.RandomState(seed).randint(0, n, size=(30, n))
    group, n_groups = ev.tie_groups(scores)
    column = group * 2 + labels
    fast = ev.auc_of_resamples(column[idx], n_groups)
    slow = ev.auc_by_ranks(labels[idx], scores[idx])
    assert fast.tobytes() == slow.tobytes()  # NaN for one-class resamples in both


# ------------------------------------------------------------------------------------------------ train


def test_training_history_holds_the_validation_set_only_when_there_is_one(tmp_path):
    """The training set's metric was computed every round only to be logged (half of training at 1M rows)."""
    tr = load_step("train")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + rng.normal(size=400) > 0).astype(float)
    for name, rows in (("train", slice(0, 300)), ("validation", slice(300, 400))):
        (tmp_path / name).mkdir()
        pd.DataFrame(np.column_stack([y[rows], x[rows]])).to_csv(
            tmp_path / name / f"{name}.csv", header=False, index=False
        )
    args = ["--model-dir", str(tmp_path / "m"), "--output-data-dir", str(tmp_path / "o")]
    hp = hyperparameter_args({"num_round": 5})
    assert (
        tr.main(
            ["--train", str(tmp_path / "train"), "--validation", str(tmp_path / "validation"), *args, *hp]
        )
        == 0
    )
    history = json.loads((tmp_path / "o" / "training.json").read_text())["evaluation_history"]
    assert list(history) == ["validation"]
    args = ["--model-dir", str(tmp_path / "m2"), "--output-data-dir", str(tmp_path / "o2")]
    hp = hyperparameter_args({"num_round": 5}, early_stopping=False)
    assert tr.main(["--train", str(tmp_path / "train"), *args, *hp]) == 0
    history = json.loads((tmp_path / "o2" / "training.json").read_text())["evaluation_history"]
    assert list(history) == ["train"]


# ------------------------------------------------------------------------------------------------ explain


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    depth=st.integers(1, 7),
    rounds=st.integers(1, 12),
    missing=st.sampled_from([0.0, 0.2]),
    rows=st.sampled_from([40, 300]),
    objective=st.sampled_from(["binary:logistic", "reg:squarederror"]),
)
def test_grouped_tree_shap_is_xgboosts_pred_contribs_bit_for_bit(
    seed, depth, rounds, missing, rows, objective
):
    """Grouping rows by their way through each tree gives XGBoost's own float32 SHAP values: shallow trees (the
    table of patterns), deep ones (sorted patterns, or every row), missing values, ties at split values."""
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5)).astype(np.float32)
    x[:, 1] = np.round(x[:, 1])  # few distinct values: rows exactly at a split value
    x[rng.random(x.shape) < missing] = np.nan
    y = ((np.nan_to_num(x[:, 0]) + rng.normal(size=rows)) > 0).astype(float)
    params = {"objective": objective, "max_depth": depth, "eta": 0.3, "seed": seed, "subsample": 0.9}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), rounds)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "GROUPED_MIN_ROWS", 1)
        grouped = ex.grouped_tree_shap(booster, x)
    assert grouped is not None
    assert grouped.tobytes() == booster.predict(xgb.DMatrix(x), pred_contribs=True).tobytes()


def test_grouped_tree_shap_leaves_other_models_to_xgboost():
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(float)
    plain = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=y), 3)
    assert ex.grouped_tree_shap(plain, x) is not None
    assert ex.grouped_tree_shap(plain, x[:100]) is None  # few rows: XGBoost's own pass
    forest = xgb.train({"max_depth": 2, "num_parallel_tree": 2}, xgb.DMatrix(x, label=y), 3)
    dart = xgb.train({"max_depth": 2, "booster": "dart"}, xgb.DMatrix(x, label=y), 3)
    multi = xgb.train(
        {"max_depth": 2, "objective": "multi:softprob", "num_class": 3},
        xgb.DMatrix(x, label=rng.integers(0, 3, 3000)),
        3,
    )
    for booster in (forest, dart, multi):
        assert ex.grouped_tree_shap(booster, x) is None
        assert (
            ex.tree_shap(booster, x).tobytes()
            == booster.predict(xgb.DMatrix(x), pred_contribs=True).tobytes()
        )


# ------------------------------------------------------------------------------------------------ bias


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_features=st.integers(1, 6),
    facet_at=st.integers(0, 5),
    group_at=st.one_of(st.none(), st.integers(0, 5)),
    rows=st.integers(20, 60),
)
def test_bias_reading_only_its_columns_gives_the_full_read_metrics(
    tmp_path_factory, seed, n_features, facet_at, group_at, rows
):
    """bias reads the label, facet and group columns of the splits only: the same analysis and report as
    reading every column."""
    rng = np.random.default_rng(seed)
    root = tmp_path_factory.mktemp("bias")
    names = [f"f{k}" for k in range(n_features)]
    (root / "data" / "schema").mkdir(parents=True)
    (root / "data" / "schema" / "feature_schema.json").write_text(
        json.dumps({"label": "y", "features": names})
    )
    for split in ("train", "validation", "test"):
        values = rng.integers(0, 3, size=(rows, n_features + 1)).astype(float)
        values[:, 0] = values[:, 0] > 0
        values[:2, 1 + facet_at % n_features] = [0, 1]  # both facets present
        (root / "data" / split).mkdir()
        pd.DataFrame(values).to_csv(root / "data" / split / f"{split}.csv", header=False, index=False)
    labels = pd.read_csv(root / "data" / "test" / "test.csv", header=None)[0]
    (root / "pred").mkdir()
    pd.DataFrame({"label": labels, "score": rng.random(rows)}).to_csv(
        root / "pred" / "predictions.csv", index=False
    )
    config = {
        "data": {"label": "y"},
        "bias": {
            "facet": names[facet_at % n_features],
            "facet_values": [1],
            "label_values": [1],
            "pre_training_metrics": sorted(bias.PRE_METRICS),
            "post_training_metrics": sorted(bias.POST_METRICS),
            "probability_threshold": 0.5,
            "group_variable": None if group_at is None else names[group_at % n_features],
        },
    }
    (root / "config.json").write_text(json.dumps(config))

    def analyse() -> str:
        settings_ = bias.load_settings(str(root / "config.json"))
        try:
            result = bias.analyse(
                settings_, str(root / "data"), str(root / "pred"), str(root / "config.json")
            )
        except bias.StepError as exc:
            return f"{exc.ff_code}: {exc.message}"
        return json.dumps(result)

    fast = analyse()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bias, "kept_columns", lambda _s, names, _f: list(range(len(names) + 1)))
        assert analyse() == fast


# ------------------------------------------------------------------------------------------------ runner


def test_the_local_runner_lets_openmp_threads_sleep_unless_the_user_says(monkeypatch):
    """OMP_WAIT_POLICY=PASSIVE for the run's XGBoost (spinning threads doubled training's time on shared cores),
    set before XGBoost loads libgomp, never over the user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT."""
    import sys

    from fraudflow.local.runner import quiet_openmp

    monkeypatch.setitem(sys.modules, "xgboost", sys.modules.get("xgboost") or object())
    environ: dict[str, str] = {}
    assert not quiet_openmp(environ) and environ == {}  # too late: libgomp has read it
    monkeypatch.delitem(sys.modules, "xgboost")
    assert quiet_openmp(environ) and environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    for own in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}):
        environ = dict(own)
        assert not quiet_openmp(environ) and environ == own
