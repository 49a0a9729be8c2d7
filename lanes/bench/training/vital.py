"""Fit the vital model (``lanes.router.vital``) and measure it held out by source.

Rows (text, vital, source):

- every advisory of the databases in :mod:`lanes.bench.training.advisories`: vital;
- the type corpus's commit subjects, vital when the classifier's cue tables find vital work
  in them (security, money, data loss, migrations, incidents ...), capped per repository and
  label (``PER_SOURCE_CAP``) so no repository sets the model's voice;
- the same commits told in full (subject and the body's first paragraph, when there is one),
  labelled the same way and capped at ``PER_SOURCE_CAP_DESCRIBED``: requests are longer
  than subjects, and a model that saw only short text would take length for stakes;
- the general instructions: not vital.

The cue tables label the commits; the encoder generalises: a request that shares no cue word
with any vital subject still sits near them. The linear model is fitted on the encoder's
vectors with classes balanced. The link (:attr:`lanes.router.vital.VitalModel.link`) is
fitted on predictions for sources each model did not see (folds of
:func:`lanes.bench.training.sources.folds`), so ``p_vital`` is calibrated on text it was not
trained on, with vital and non-vital rows weighted equally.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from lanes.bench.training.advisories import LICENCES, READERS
from lanes.bench.training.commits import Row, described, git_dir, head_commit
from lanes.bench.training.fit import sample_key
from lanes.bench.training.instructions import OTHER
from lanes.bench.training.sources import SOURCES, folds
from lanes.router.classifier import rule_vital
from lanes.router.encoder import Encoder
from lanes.router.vital import VitalModel

PER_SOURCE_CAP = 2000
PER_SOURCE_CAP_DESCRIBED = 1000
RECALLS = (0.9, 0.95, 0.97, 0.99)
"""Recalls whose held-out thresholds the report gives (``routing.vital_threshold``)."""
C = 1.0
CATEGORIES: dict[str, str] = {
    "security": "security vulnerability, authentication, authorization, permissions, "
    "access control",
    "secrets": "cryptography, encryption keys, secrets, passwords, tokens",
    "injection": "SQL injection, XSS, CSRF, remote code execution",
    "tenant isolation": "multi-tenant data isolation between customers",
    "payments": "payments, billing, invoices, charges, refunds, subscriptions",
    "money": "ledger, money transfers, accounting balances, financial transactions",
    "production incident": "production outage incident, the service is down for all users",
    "production crash": "crash in production affecting every customer after release",
    "migration": "database migration, schema change on production data",
    "data loss": "deleting data, data loss, backups and restore, retention",
    "privacy": "privacy, personal data, GDPR, HIPAA compliance, audit logs",
    "production infrastructure": "production infrastructure, kubernetes cluster, "
    "deployment, DNS, load balancer",
    "performance-critical": "performance-critical hot path, latency regression, throughput",
    "architecture": "system architecture decision, design for scale",
    "medical safety": "medical device, patient dosing, safety-critical firmware",
    "vehicle safety": "vehicle control, braking, aviation safety",
    "legal": "legal contract terms, license, regulatory text",
    "concurrency": "race condition, concurrency, idempotency, duplicate processing",
}
"""The vital categories, each in a few words: the kinds of work the README calls vital."""
Progress = Callable[[str], None]


@dataclass(frozen=True)
class VitalRow:
    text: str
    vital: bool
    source: str


def advisory_rows(mirrors: Path) -> tuple[list[VitalRow], list[dict[str, Any]]]:
    """The advisories' rows and their manifest entries; a missing database is skipped by
    the caller's check (see ``build.build_corpus``)."""
    rows: list[VitalRow] = []
    manifest: list[dict[str, Any]] = []
    for repo, read in READERS.items():
        gitdir = git_dir(mirrors, repo)
        if gitdir is None:
            continue
        found = sorted({t for t in read(gitdir) if t})
        rows += [VitalRow(t, True, repo) for t in found]
        manifest.append(
            {
                "repository": repo,
                "commit": head_commit(gitdir),
                "licence": LICENCES[repo],
                "rows": len(found),
                "labels": {"vital": len(found)},
            }
        )
    return rows, manifest


def commit_rows(rows: Iterable[Row]) -> list[VitalRow]:
    """The type corpus as vital rows: commits labelled by the cue tables (capped per
    repository and label), general instructions not vital."""
    out: list[VitalRow] = []
    labelled: list[VitalRow] = []
    for row in rows:
        if row.prefix == OTHER:
            out.append(VitalRow(row.text, False, row.source))
        else:
            labelled.append(VitalRow(row.text, rule_vital(row.text), row.source))
    return out + _capped(labelled, PER_SOURCE_CAP)


def described_rows(mirrors: Path, sources: Iterable[str] = SOURCES) -> list[VitalRow]:
    """Commits told in full (:func:`lanes.bench.training.commits.described`), labelled by
    the cue tables, capped per repository and label."""
    rows: list[VitalRow] = []
    for repo in sources:
        gitdir = git_dir(mirrors, repo)
        if gitdir is not None:
            rows += [VitalRow(t, rule_vital(t), repo) for t in described(gitdir)]
    return _capped(rows, PER_SOURCE_CAP_DESCRIBED)


def _capped(rows: Iterable[VitalRow], cap: int) -> list[VitalRow]:
    groups: dict[tuple[str, bool], list[VitalRow]] = defaultdict(list)
    for row in rows:
        groups[row.source, row.vital].append(row)
    return [r for g in groups.values() for r in sorted(g, key=lambda r: sample_key(r.text))[:cap]]


def _vectors(encoder: Encoder, rows: Sequence[VitalRow]) -> np.ndarray:
    return np.stack([encoder.encode(r.text) for r in rows])


def _linear(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(x, y)
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def centroids(encoder: Encoder) -> np.ndarray:
    return np.stack([encoder.encode(text) for text in CATEGORIES.values()])


def fit_vital(
    rows: Sequence[VitalRow], encoder: Encoder, progress: Progress
) -> tuple[VitalModel, dict[str, Any]]:
    """The model fitted on every row, and its held-out-by-source report."""
    x = _vectors(encoder, rows)
    y = np.array([r.vital for r in rows])
    cents = centroids(encoder)
    close = (x @ cents.T).max(axis=1)
    held = np.zeros(len(rows))
    groups = folds(sorted({r.source for r in rows}))
    per_fold: list[dict[str, Any]] = []
    for k, fold in enumerate(groups, 1):
        progress(f"vital fold {k}/{len(groups)}: fitting without {len(fold)} sources")
        out = np.array([r.source in fold for r in rows])
        w, b = _linear(x[~out], y[~out])
        held[out] = x[out] @ w + b
        per_fold.append(_auc_entry(list(fold), y[out], held[out]))
    link = LogisticRegression(C=100.0, class_weight="balanced").fit(np.c_[held, close], y)
    a, bb = (float(v) for v in link.coef_[0])
    weights, bias = _linear(x, y)
    model = VitalModel(
        weights,
        bias,
        tuple(CATEGORIES),
        cents.astype(np.float32),
        (a, bb, float(link.intercept_[0])),
    )
    z = a * held + bb * close + float(link.intercept_[0])
    p_held = 1.0 / (1.0 + np.exp(-z))
    report = {
        "rows": len(rows),
        "vital_rows": int(y.sum()),
        "heldout_by_source": {
            "auc": round(float(roc_auc_score(y, z)), 4),
            "per_fold": per_fold,
        },
        "threshold_for_recall": {
            str(r): round(float(np.quantile(p_held[y], 1.0 - r)), 4) for r in RECALLS
        },
        "link": {"linear": round(a, 4), "closeness": round(bb, 4), "bias": round(model.link[2], 4)},
    }
    return model, report


def _auc_entry(sources: list[str], y: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    auc = float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None
    return {
        "sources": sources,
        "n": len(y),
        "vital": int(y.sum()),
        "auc": round(auc, 4) if auc is not None else None,
    }
