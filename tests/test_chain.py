"""Matrix chains: forward (left to right), reverse (right to left), optimal (DP)."""

from __future__ import annotations

import json
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffcheck.cli import main
from diffcheck.cost import chain_cost, left_to_right, order_cost, parse_shapes, right_to_left
from diffcheck.errors import DiffcheckError, UsageError


def all_bracketings(dims: tuple[int, ...]) -> list[tuple[int, str]]:
    """Every full bracketing of the chain with dimensions ``dims``: (multiply-adds, text)."""

    @cache
    def trees(i: int, j: int) -> tuple[tuple[int, str], ...]:
        if i == j:
            return ((0, f"A{i + 1}"),)
        out = []
        for s in range(i, j):
            for cl, tl in trees(i, s):
                for cr, tr in trees(s + 1, j):
                    out.append((cl + cr + dims[i] * dims[s + 1] * dims[j + 1], f"({tl} {tr})"))
        return tuple(out)

    return list(trees(0, len(dims) - 2))


def shapes_of(dims: list[int]) -> list[str]:
    return [f"{a}x{b}" for a, b in zip(dims, dims[1:], strict=False)]


def test_the_seed_example():
    result = chain_cost(["10x100", "100x100", "100x1"])
    assert (result.forward, result.reverse, result.optimal) == (101_000, 11_000, 11_000)
    assert result.order == "(A1 (A2 A3))"
    assert result.forward_order == "((A1 A2) A3)"
    assert result.reverse_order == "(A1 (A2 A3))"


def test_abc_formulas_from_the_seeds():
    m, n, p, q = 3, 5, 7, 2
    result = chain_cost([(m, n), (n, p), (p, q)])
    assert result.forward == m * n * p + m * p * q  # (AB)C
    assert result.reverse == m * n * q + n * p * q  # A(BC)


def test_optimal_can_beat_both_ends():
    # thin in the middle: neither end-to-end order is best
    result = chain_cost(["50x50", "50x1", "1x50", "50x50"])
    assert result.optimal < min(result.forward, result.reverse)
    assert result.order == "((A1 A2) (A3 A4))"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=3, max_size=9))
def test_dynamic_programming_matches_brute_force(dims):
    result = chain_cost(shapes_of(dims))
    trees = all_bracketings(tuple(dims))
    best = min(c for c, _ in trees)
    assert result.optimal == best
    assert (result.optimal, result.order) in trees
    assert order_cost(parse_shapes(shapes_of(dims)), result.order) == best
    costs = dict((t, c) for c, t in trees)
    assert result.forward == costs[result.forward_order]
    assert result.reverse == costs[result.reverse_order]
    assert result.optimal <= min(result.forward, result.reverse)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=3, max_size=9))
def test_end_to_end_orders_by_definition(dims):
    shapes = parse_shapes(shapes_of(dims))
    acc_rows, fwd = dims[0], 0
    for b, c in zip(dims[1:], dims[2:], strict=False):
        fwd += acc_rows * b * c
    acc_cols, rev = dims[-1], 0
    for a, b in zip(reversed(dims[:-2]), reversed(dims[1:-1]), strict=False):
        rev += a * b * acc_cols
    assert left_to_right(shapes) == fwd
    assert right_to_left(shapes) == rev


@pytest.mark.parametrize("shapes, words", [
    (["10x100", "50x3"], ["A1 is 10x100", "A2 is 50x3", "100 and 50", "don't match"]),
    (["10x", "10x2"], ["'10x'", "ROWSxCOLS"]),
    (["0x5", "5x2"], ["0x5", "positive"]),
    (["10x100"], ["at least two"]),
    (["ax3", "3x2"], ["'ax3'"]),
    (["2x3", "3x-1"], ["'3x-1'"]),
])
def test_bad_shapes_say_what_is_wrong(shapes, words):
    with pytest.raises(UsageError) as info:
        chain_cost(shapes)
    assert isinstance(info.value, DiffcheckError)
    for w in words:
        assert w in str(info.value)


def test_cli_json(capsys):
    assert main(["chain", "10x100", "100x100", "100x1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {k: doc[k] for k in ("forward", "reverse", "optimal", "order")} == {
        "forward": 101_000, "reverse": 11_000, "optimal": 11_000, "order": "(A1 (A2 A3))"}


def test_cli_text_names_the_ends(capsys):
    assert main(["chain", "10x100", "100x100", "100x1"]) == 0
    out = capsys.readouterr().out
    assert "input side: A1" in out and "output side: A3" in out
    assert "forward (left to right)" in out and "101,000" in out


@pytest.mark.parametrize("argv", [["10x100", "50x3"], ["10x"], ["0x5", "5x1"], ["10x100"]])
def test_cli_bad_input_exit_2_one_paragraph(capsys, argv):
    assert main(["chain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffcheck: error:") and "Traceback" not in err
