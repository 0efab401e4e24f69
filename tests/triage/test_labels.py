import pytest

from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import Prediction
from app.triage.labels import LabelPolicy, LabelSpec


def pred(ptm_score=0.9, ptm=True, themes=("HR",), subthemes=("HR1",), theme_scores=None) -> Prediction:
    scores = {c: 0.1 for c in THEME_CODES} | {c: 0.9 for c in themes} | (theme_scores or {})
    return Prediction(
        ptm_score=ptm_score,
        theme_scores=scores,
        subtheme_scores={c: (0.8 if c in subthemes else 0.05) for c in SUBTHEME_CODES},
        ptm=ptm,
        themes=themes,
        subthemes=subthemes,
        model="fake@1",
    )


def test_ptm_issue_gets_ptm_and_theme_labels():
    assert LabelPolicy().labels_for(pred(themes=("MU", "HR"))) == [
        "ptm: related",
        "ptm: model usage",
        "ptm: hardware and computation resource",
    ]


def test_not_ptm_gives_nothing_and_uncertain_abstains():
    policy = LabelPolicy()
    assert policy.labels_for(pred(ptm_score=0.1, ptm=False, themes=(), subthemes=())) == []
    assert policy.labels_for(pred(ptm_score=0.5)) == ["ptm: needs-triage"]
    assert policy.labels_for(pred(ptm_score=0.35)) == ["ptm: needs-triage"]
    assert LabelPolicy(uncertain_band=None).labels_for(pred(ptm_score=0.5))[0] == "ptm: related"


def test_ptm_without_a_confident_theme_adds_the_abstain_label():
    assert LabelPolicy().labels_for(pred(themes=(), subthemes=())) == ["ptm: related", "ptm: needs-triage"]


def test_threshold_overrides_replace_the_model_decisions():
    policy = LabelPolicy(ptm_threshold=0.95, theme_thresholds={"HR": 0.95, "SE": 0.05})
    assert policy.labels_for(pred(ptm_score=0.9)) == []
    assert LabelPolicy(ptm_threshold=0.8, theme_thresholds={"HR": 0.95, "SE": 0.05}).labels_for(pred()) == [
        "ptm: related",
        "ptm: software environment",
    ]
    with pytest.raises(ValueError):
        LabelPolicy(theme_thresholds={"XX": 0.5})
    with pytest.raises(ValueError):
        LabelPolicy(ptm_threshold=1.5)
    with pytest.raises(ValueError):
        LabelPolicy(uncertain_band=(0.7, 0.3))


def test_subtheme_labels_only_when_enabled_and_under_their_theme():
    assert "ptm: HR1 memory usage" not in LabelPolicy().labels_for(pred())
    labels = LabelPolicy(subthemes=True).labels_for(pred(themes=("HR",), subthemes=("HR1", "SE1")))
    assert labels == ["ptm: related", "ptm: hardware and computation resource", "ptm: HR1 memory usage"]


def test_all_labels_fit_github_limits_and_themes_have_distinct_colours():
    specs = LabelPolicy(subthemes=True).all_labels()
    assert len(specs) == 2 + 7 + 32
    assert len({s.name.casefold() for s in specs}) == len(specs)
    assert all(len(s.name) <= 50 and len(s.description) <= 100 for s in specs)
    theme_colours = [s.color for s in specs[2:9]]
    assert len(set(theme_colours)) == 7
    assert len(LabelPolicy().all_labels()) == 9
    assert "ptm: HR2 hardware initialization and execution" in {s.name for s in specs}


def test_label_spec_enforces_limits():
    with pytest.raises(ValueError):
        LabelSpec("x" * 51, "ffffff", "")
    with pytest.raises(ValueError):
        LabelSpec("ok", "#ffffff", "")
    with pytest.raises(ValueError):
        LabelSpec("ok", "ffffff", "d" * 101)
    with pytest.raises(ValueError):
        LabelPolicy(abstain_label="ptm: model usage")


def test_is_app_label_ignores_case_and_knows_the_prefix():
    policy = LabelPolicy()
    assert policy.is_app_label("PTM: Model Usage") and policy.is_app_label("ptm: needs-triage")
    assert policy.is_app_label("ptm: hr1 memory usage")  # sub-theme labels stay ours when disabled
    assert not policy.is_app_label("bug") and not policy.is_app_label("ptm: something else")
    assert policy.code_of("ptm: Related") == "PTM" and policy.code_of("PTM: model usage") == "MU"
    custom = LabelPolicy(prefix="ai", abstain_label="triage")
    assert custom.labels_for(pred()) == ["ai: related", "ai: hardware and computation resource"]
    assert custom.is_app_label("Triage") and not custom.is_app_label("ptm: related")


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        (pred(themes=("MU", "HR")), (True, ("MU", "HR"))),
        (pred(ptm=False, ptm_score=0.1), (False, ())),
        (pred(ptm_score=0.5), (None, ())),
        (pred(themes=()), (True, ())),
    ],
    ids=["ptm-with-themes", "not-ptm", "abstain", "ptm-without-theme"],
)
def test_decode_reads_back_what_labels_for_writes(prediction, expected):
    policy = LabelPolicy()
    assert policy.decode(policy.labels_for(prediction)) == expected


def test_decode_reads_a_persons_labels_in_any_case():
    policy = LabelPolicy()
    assert policy.decode(["bug", "PTM: Software Environment"]) == (True, ("SE",))
    assert policy.decode(["bug", "question"]) == (False, ())


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["bug"], "bug"),
        (["type: bug"], "bug"),
        (["kind/feature"], "enhancement"),
        (["Feature Request"], "enhancement"),
        (["question"], "question"),
        (["help wanted", "good first issue"], None),
        (["ptm: model functionality enhancement needs"], None),
        (["ptm: model usage", "question"], "question"),
    ],
)
def test_issue_type_from_the_repositorys_own_labels(labels, expected):
    assert LabelPolicy().issue_type(labels) == expected


def typed(kind):
    base = pred()
    return Prediction(**{**base.__dict__, "extra": {"type": kind, "type_scores": {kind: 0.9}}})


def test_type_labels_only_when_asked_and_only_where_the_repository_gives_none():
    assert "ptm: bug" not in LabelPolicy().labels_for(typed("bug"))
    policy = LabelPolicy(types=True)
    assert policy.labels_for(typed("bug"))[-1] == "ptm: bug"
    assert "ptm: bug" not in policy.labels_for(typed("bug"), existing=["type: bug"])
    assert "ptm: question" not in policy.labels_for(typed("question"), existing=["Feature request"])
    assert policy.is_app_label("PTM: Question") and "ptm: enhancement" in {s.name for s in policy.all_labels()}
    assert policy.decode(["ptm: bug"]) == (False, ()), "a type label says nothing about PTM"
