"""Winograd minimal filtering F(m x m, r x r): the transform matrices, computed exactly.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2015). A stride-1
cross-correlation of an (m + r - 1)-square input tile ``d`` with an r x r filter ``g`` gives an
m x m output tile as

    Y = AT [(G g G^T) * (BT d BT^T)] AT^T        (* element-wise)

with T = m + r - 1 products per row instead of m * r: for F(2x2, 5x5), 36 multiplications per
2x2 output tile instead of 100. The matrices come from Toom-Cook polynomial multiplication at
the points ``points`` (plus infinity) and the transposition principle: with V the T x T
evaluation matrix (row j: powers of point j; the last row, infinity, picks the leading
coefficient), G and AT^T evaluate a polynomial of r and m coefficients at the same points
(infinity: its leading coefficient), and BT = V^-T. Each row k of BT is scaled to
integers and row k of G divided by the same factor, so the input transform adds and shifts.
Computed with ``fractions.Fraction``: every entry is exact before the cast to float64.
"""

from fractions import Fraction
from functools import cache

import numpy as np

#: Interpolation points, the first T - 1 of which F(m, r) uses: small magnitudes keep float32
#: rounding low (F(2, 3) gets Lavin's 0, 1, -1). The float32 error against a float64 direct
#: convolution is measured in tests.
POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2), 3, -3)


def _invert(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact Gauss-Jordan inverse of a square matrix of Fractions."""
    size = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(size)]
            for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next(i for i in range(col, size) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [value / lead for value in rows[col]]
        for i in range(size):
            if i != col and rows[i][col] != 0:
                factor = rows[i][col]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[col])]
    return [row[size:] for row in rows]


def _lcm_of_denominators(values) -> int:
    result = 1
    for value in values:
        den = Fraction(value).denominator
        result = result * den // np.gcd(result, den)
    return result


@cache
def matrices(m: int, r: int, points: tuple | None = None) -> tuple[np.ndarray, ...]:
    """``(AT, G, BT)`` for F(m x m, r x r) as float64 arrays of shapes (m, T), (T, r), (T, T),
    T = m + r - 1. ``points``: the T - 1 finite interpolation points (default: from ``POINTS``)."""
    tile = m + r - 1
    points = tuple(Fraction(p) for p in (points if points is not None else POINTS[:tile - 1]))
    if len(points) != tile - 1 or len(set(points)) != len(points):
        raise ValueError(f"F({m}, {r}) needs {tile - 1} distinct points, got {points}")
    evaluation = [[p ** k for k in range(tile)] for p in points]
    evaluation.append([Fraction(int(k == tile - 1)) for k in range(tile)])  # the point at infinity
    inverse = _invert(evaluation)  # (T, T): coefficients from values
    bt = [[inverse[j][k] for j in range(tile)] for k in range(tile)]  # BT = V^-T
    g = [row[:r] for row in evaluation[:-1]] + [[Fraction(int(k == r - 1)) for k in range(r)]]
    for k in range(tile):  # BT row k times s, G row k divided by s: the product is unchanged
        scale = _lcm_of_denominators(bt[k])
        bt[k] = [value * scale for value in bt[k]]
        g[k] = [value / scale for value in g[k]]
    at = [[p ** i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (at, g, bt))
