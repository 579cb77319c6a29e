"""The report's front page: verdicts in sentences with their numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.controls.front_page import front_page_sections, model_verdict_sentences


def _table():
    nan = np.nan
    base = {"random_ci_low": 0.1, "random_ci_high": 0.3, "n_twins": 3, "random": 0.2}
    return pd.DataFrame(
        [
            {**base, "statistic": "binding accuracy (swapped captions)", "kind": "accuracy",
             "trained": 0.58, "trained_mantel_p": nan, "survives": True},
            {**base, "statistic": "r(S, M), all pairs", "kind": "correlation", "trained": 0.26,
             "trained_mantel_p": 0.26, "survives": False},
            {**base, "statistic": "r(S, D), pairs without a position", "kind": "correlation",
             "trained": -0.5, "trained_mantel_p": 0.01, "survives": False},
        ]
    )  # fmt: skip


def test_sentences_say_what_survived_failed_and_was_not_detected_with_power():
    correlation = pd.DataFrame(
        {"metric": ["M"], "space": ["full"], "subset": ["all"], "mde_r": [0.41]}
    )
    survived, failed, undetected = model_verdict_sentences(_table(), correlation)
    assert "Survived 3 random-weights twins" in survived
    assert "binding accuracy (swapped captions) (trained 0.58 against 3 twins 0.2" in survived
    assert "r(S, D), pairs without a position" in failed
    assert "r(S, M), all pairs: not detected" in undetected
    assert "80% power only for |r| >= 0.41" in undetected
    text = " ".join([survived, failed, undetected])
    assert "absent" not in text and "no effect" not in text
    # without mde_r the page says that the power was not computed
    assert "power was not computed" in model_verdict_sentences(_table())[2]
    sections = front_page_sections({"toy": _table()})
    assert sections[0][0] == "toy" and "Not detected" in sections[0][2]
