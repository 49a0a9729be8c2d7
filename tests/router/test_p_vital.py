"""``p_vital``: the learned chance that a request is costly if done wrong, what it adds to the
cue tables, and the threshold from config that turns it into the vital decision."""

from __future__ import annotations

from lanes.kernel.config import Config
from lanes.router.classifier import classify_text, rule_vital
from lanes.router.engine import Router
from lanes.router.job import Job
from lanes.router.vital import shipped_vital_model
from tests.router.test_vital import configured

BENIGN = "make the sidebar buttons a lighter shade of grey"
STAKES = "customers were charged twice for their subscription renewal after the retry change"


def test_p_vital_is_a_probability_that_ranks_stakes_above_trivia() -> None:
    model = shipped_vital_model()
    low, high = model.judge(BENIGN), model.judge(STAKES)
    assert 0.0 <= low.p_vital < high.p_vital <= 1.0
    assert high.category in model.categories


def test_the_model_finds_vital_work_no_cue_names() -> None:
    assert not rule_vital(STAKES)
    clf = classify_text(STAKES)
    assert clf.vital and clf.p_vital >= clf.vital_threshold
    assert clf.vital_reason is not None and clf.vital_reason.startswith("near ")
    assert f"p_vital {clf.p_vital:.2f} >= 0.5" in clf.vital_reason


def test_the_threshold_decides_and_a_cue_needs_no_threshold() -> None:
    assert classify_text(BENIGN, vital_threshold=0.0).vital
    assert not classify_text(STAKES, vital_threshold=1.0).vital
    cued = classify_text("rotate the leaked API keys", vital_threshold=1.0)
    assert cued.vital and cued.vital_reason is not None and "security" in cued.vital_reason


def test_routing_reads_its_threshold_from_config(example_config: Config) -> None:
    job = Job(prompt=BENIGN)
    eager = Router(configured(example_config, vital_threshold=0.0)).decide(job)
    relaxed = Router(configured(example_config, vital_threshold=1.0)).decide(job)
    assert eager.classification.vital and eager.classification.vital_threshold == 0.0
    assert not relaxed.classification.vital and relaxed.classification.vital_threshold == 1.0
    assert eager.classification.p_vital == relaxed.classification.p_vital


def test_an_explicit_vital_false_still_wins(example_config: Config) -> None:
    router = Router(configured(example_config, vital_threshold=0.0))
    assert not router.decide(Job(prompt=BENIGN, vital=False)).classification.vital


def test_a_threshold_outside_zero_to_one_is_refused(example_config: Config) -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="vital_threshold"):
        configured(example_config, vital_threshold=1.5)


def test_a_pin_to_a_cheap_lane_wins_over_p_vital_alone_with_a_warning(
    example_config: Config,
) -> None:
    import pytest

    from lanes.kernel.errors import JobError

    router = Router(example_config)
    decision = router.decide(Job(prompt=STAKES, instance="zai"))
    assert decision.instance == "zai" and not decision.classification.vital
    assert decision.reasons[0].startswith("Warning: the job pins cheap lane zai and p_vital")
    assert '"vital": true' in decision.reasons[0]
    with pytest.raises(JobError, match="vital work never goes to a cheap lane"):
        router.decide(Job(prompt=STAKES, instance="zai", vital=True))
    with pytest.raises(JobError, match="security"):
        router.decide(Job(prompt="rotate the leaked API keys", instance="zai"))
    unpinned = router.decide(Job(prompt=STAKES))
    assert unpinned.classification.vital and unpinned.instance not in ("zai", "koala")
