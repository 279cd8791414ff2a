"""Contrasts written as linear expressions over design columns and level names.

``"TRD_UP + TRD_BP - nonTRD_UP - nonTRD_BP"`` or ``"HC - mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP)"``
become weight vectors over the design's columns. Expressions are read by a small recursive-descent
parser (never ``eval``) that accepts only linear combinations: ``+ - * /``, unary minus,
parentheses, numbers and ``mean(a, b, ...)``. Names that are not identifiers go in backticks:
```group[T.M]` - HC``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graymatter.errors import ContrastError, format_choices
from graymatter.stats.design import Design, indicator_columns, scaled_row_space

__all__ = ["Contrast", "parse_contrast", "parse_contrasts", "check_estimable"]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<quoted>`[^`]*`)
  | (?P<op>[-+*/(),])
""", re.VERBOSE)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOL = 1e-6  # relative tolerance of the estimability test (residual of the row-space projection)


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields do not compare as a tuple
class Contrast:
    """A t or F contrast over the columns of one design.

    Attributes
    ----------
    name : str
        Label used in outputs.
    kind : {"t", "F"}
        ``"t"`` for one row (signed, one-sided tests possible), ``"F"`` for one or more rows.
    matrix : numpy.ndarray
        ``(q, p)`` float64 weights; ``q == 1`` for a t contrast.
    expressions : tuple of str
        The expression of each row, as written.
    """

    name: str
    kind: str
    matrix: np.ndarray
    expressions: tuple[str, ...]

    @property
    def vector(self) -> np.ndarray:
        """The weights ``(p,)`` of a t contrast."""
        if self.kind != "t":
            raise ContrastError(f"contrast '{self.name}' is an F contrast with {self.matrix.shape[0]} "
                                "row(s); it has a weight matrix, not a vector")
        return self.matrix[0].copy()

    def to_dict(self, columns: Sequence[str]) -> dict:
        """JSON-able summary: name, kind, expressions and ``{column: weight}`` per row."""
        columns = [str(c) for c in columns]
        if len(columns) != self.matrix.shape[1]:
            raise ContrastError(f"contrast '{self.name}' has {self.matrix.shape[1]} weights but "
                                f"{len(columns)} column names were given")
        return {"name": self.name, "kind": self.kind, "expressions": list(self.expressions),
                "weights": [{c: float(w) for c, w in zip(columns, row)} for row in self.matrix]}


def parse_contrast(name: str, expression: str | Sequence[str], design: Design) -> Contrast:
    """Turn a contrast expression into weights over ``design``'s columns.

    Parameters
    ----------
    name : str
        Label of the contrast.
    expression : str or sequence of str
        One string is a t contrast; a sequence of strings, or one string whose rows are separated
        by ``";"``, is an F contrast with one row per expression. Names are design aliases (level
        names such as ``HC``, columns such as ``age``); other column names go in backticks.
    design : Design
        The design the contrast applies to.

    Returns
    -------
    Contrast

    Raises
    ------
    ContrastError
        On a syntax error, unknown or ambiguous name, non-linear or all-zero expression, linearly
        dependent F rows, or a contrast the design cannot estimate.

    Examples
    --------
    With the cell-means design of Study A (``"0 + group + ..."``)::

        parse_contrast("HC>MDD", "HC - mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP)", design)
        # weights: HC 1, each patient cell -0.25
        parse_contrast("groups", ["TRD_UP - HC", "TRD_BP - HC"], design)  # F contrast, 2 rows
    """
    if not isinstance(name, str) or not name.strip():
        raise ContrastError(f"a contrast needs a non-empty name, got {name!r}")
    if isinstance(expression, str):
        rows = [r.strip() for r in expression.split(";")]
        kind = "t" if len(rows) == 1 else "F"
    elif isinstance(expression, Sequence) and expression and all(isinstance(e, str) for e in expression):
        rows, kind = [e.strip() for e in expression], "F"
    else:
        raise ContrastError(f"contrast '{name}' must be an expression string or a list of them, "
                            f"got {expression!r}")
    if any(not r for r in rows):
        raise ContrastError(f"contrast '{name}' has an empty expression ({expression!r})")
    columns = design.columns
    matrix = np.zeros((len(rows), len(columns)))
    for i, row in enumerate(rows):
        weights = _Parser(name, row, design).parse()
        if all(abs(w) < 1e-12 for w in weights.values()):
            raise ContrastError(f"contrast '{name}': '{row}' has all weights zero (its terms cancel "
                                "out), so it tests nothing")
        for column, w in weights.items():
            matrix[i, columns.index(column)] = w
    if kind == "F" and np.linalg.matrix_rank(matrix) < len(rows):
        raise ContrastError(f"contrast '{name}': its {len(rows)} rows ({'; '.join(rows)}) are linearly "
                            "dependent (one is a combination of the others); drop the redundant row(s)")
    matrix.setflags(write=False)
    contrast = Contrast(name=name, kind=kind, matrix=matrix, expressions=tuple(rows))
    check_estimable(contrast, design)
    return contrast


def parse_contrasts(spec: Mapping[str, str | Sequence[str]], design: Design) -> list[Contrast]:
    """Parse ``{name: expression}`` into contrasts, in the mapping's order (see :func:`parse_contrast`)."""
    if not isinstance(spec, Mapping):
        raise ContrastError(f"contrasts must be given as a mapping of name to expression, got "
                            f"{type(spec).__name__}")
    return [parse_contrast(str(name), expr, design) for name, expr in spec.items()]


def check_estimable(contrast: Contrast, design: Design) -> None:
    """Raise ContrastError unless every row of the contrast lies in the row space of the design.

    A row ``c`` is estimable when ``c @ beta`` is the same for every least-squares solution
    ``beta``, i.e. ``c`` is a combination of rows of ``X``. The test projects ``c`` on the row
    space (computed on unit-norm columns, matching the rank decision of ``make_design``) and
    requires ``||c - proj(c)|| <= 1e-6 * ||c||`` in that scaling (all-zero rows pass).
    """
    C = np.atleast_2d(np.asarray(contrast.matrix, dtype=np.float64))
    columns = design.columns
    if C.shape[1] != len(columns):
        raise ContrastError(f"contrast '{contrast.name}' has {C.shape[1]} weights but the design has "
                            f"{len(columns)} columns")
    scale, row_space, _ = scaled_row_space(design.X)
    Cs = C * scale  # c @ beta == (c * s) @ (beta / s): the same contrast on the scaled design
    residual = Cs - (Cs @ row_space.T) @ row_space
    for i, (cs, res) in enumerate(zip(Cs, residual)):
        # relative to ||c s||: scaled weights are small (columns have unit norm), so an absolute
        # floor such as max(1, ||c||) would let every contrast pass
        if np.linalg.norm(res) > _TOL * np.linalg.norm(cs):
            involved = [c for c, r in zip(columns, np.abs(res) / np.abs(res).max()) if r > 1e-3]
            row = contrast.expressions[i] if i < len(contrast.expressions) else f"row {i + 1}"
            raise ContrastError(
                f"contrast '{contrast.name}' is not estimable with this design: '{row}' depends on a "
                f"combination of columns ({format_choices(involved, 20)}) that the data cannot "
                f"separate (design rank {design.rank} < {len(columns)} columns). This happens with "
                "rank-deficient designs; compare only quantities the design identifies (e.g. "
                "differences between levels) or remove the redundant columns")


class _Parser:
    """Recursive descent over tokens; values are linear forms ``({column: weight}, constant)``.

    Grammar::

        expr  := term (("+" | "-") term)*
        term  := unary (("*" | "/") unary)*
        unary := ("+" | "-") unary | atom
        atom  := NUMBER | NAME | `QUOTED` | "mean" "(" expr ("," expr)* ")" | "(" expr ")"
    """

    def __init__(self, name: str, text: str, design: Design):
        self.name, self.text, self.design = name, text, design
        self.tokens = self._tokenize()
        self.i = 0

    # -- errors ----------------------------------------------------------------------------------
    def _syntax(self, problem: str, pos: int) -> ContrastError:
        return ContrastError(f"contrast '{self.name}': cannot parse '{self.text}': {problem} at "
                             f"position {pos + 1} (at '{self.text[pos:pos + 12] or 'end'}')")

    def _nonlinear(self, what: str) -> ContrastError:
        return ContrastError(f"contrast '{self.name}': '{self.text}' {what}; contrasts must be linear "
                             "(sums of design terms times numbers, e.g. '0.5*HC - 0.5*TRD_UP')")

    # -- tokens ----------------------------------------------------------------------------------
    def _tokenize(self) -> list[tuple[str, str, int]]:
        tokens, pos = [], 0
        while pos < len(self.text):
            m = _TOKEN.match(self.text, pos)
            if m is None:
                if self.text[pos] == "`":
                    raise self._syntax("unclosed backtick", pos)
                raise self._syntax(f"unexpected character '{self.text[pos]}'", pos)
            if m.lastgroup != "space":
                tokens.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        tokens.append(("end", "", len(self.text)))
        return tokens

    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def _take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _expect(self, value: str) -> None:
        kind, text, pos = self._take()
        if text != value or kind != "op":
            raise self._syntax(f"expected '{value}' but found {text!r}" if text else
                               f"expected '{value}' but the expression ended", pos)

    # -- grammar ---------------------------------------------------------------------------------
    def parse(self) -> dict[str, float]:
        coefs, const = self._expr()
        kind, text, pos = self._peek()
        if kind != "end":
            raise self._syntax(f"unexpected {text!r} (missing operator?)", pos)
        if abs(const) > 1e-12:
            raise ContrastError(f"contrast '{self.name}': '{self.text}' has a constant term ({const:g}) "
                                "not attached to any design term; a contrast is a set of weights on "
                                "design columns (e.g. write '2*HC', not 'HC + 2')")
        return coefs

    def _expr(self):
        left = self._term()
        while self._peek()[1] in ("+", "-") and self._peek()[0] == "op":
            sign = 1.0 if self._take()[1] == "+" else -1.0
            left = _add(left, _scale(self._term(), sign))
        return left

    def _term(self):
        left = self._unary()
        while self._peek()[1] in ("*", "/") and self._peek()[0] == "op":
            op = self._take()[1]
            right = self._unary()
            if op == "*":
                if left[0] and right[0]:
                    raise self._nonlinear("multiplies two design terms")
                left = _scale(right, left[1]) if not left[0] else _scale(left, right[1])
            else:
                if right[0]:
                    raise self._nonlinear("divides by a design term")
                if right[1] == 0:
                    raise ContrastError(f"contrast '{self.name}': '{self.text}' divides by zero")
                left = _scale(left, 1.0 / right[1])
        return left

    def _unary(self):
        kind, text, _ = self._peek()
        if kind == "op" and text in ("+", "-"):
            self._take()
            return _scale(self._unary(), -1.0 if text == "-" else 1.0)
        return self._atom()

    def _atom(self):
        kind, text, pos = self._take()
        if kind == "number":
            return {}, float(text)
        if kind == "quoted":
            return {self._resolve(text[1:-1], pos): 1.0}, 0.0
        if kind == "name":
            if self._peek()[1] == "(" and self._peek()[0] == "op":
                return self._call(text, pos)
            return {self._resolve(text, pos): 1.0}, 0.0
        if kind == "op" and text == "(":
            value = self._expr()
            self._expect(")")
            return value
        problem = "the expression ended" if kind == "end" else f"found {text!r}"
        raise self._syntax(f"expected a name, number or '(' but {problem}", pos)

    def _call(self, func: str, pos: int):
        if func != "mean":
            raise self._syntax(f"unknown function '{func}' (only mean(...) is supported)", pos)
        self._expect("(")
        if self._peek()[1] == ")":
            raise self._syntax("mean() needs at least one argument", self._peek()[2])
        args = [self._expr()]
        while self._peek()[1] == "," and self._peek()[0] == "op":
            self._take()
            args.append(self._expr())
        self._expect(")")
        total: tuple[dict, float] = ({}, 0.0)
        for arg in args:
            total = _add(total, arg)
        return _scale(total, 1.0 / len(args))

    # -- names -----------------------------------------------------------------------------------
    def _resolve(self, term: str, pos: int) -> str:
        design = self.design
        if term in design.aliases:
            return design.aliases[term]
        shared = indicator_columns(design.columns, design.levels).get(term, [])
        if len(shared) > 1:
            raise ContrastError(
                f"contrast '{self.name}' names '{term}', which is ambiguous: it is a level of "
                f"{format_choices(repr(f) for f, _ in shared)} (columns "
                f"{format_choices(f'`{c}`' for _, c in shared)}); write the full column name in "
                f"backticks, e.g. `{shared[0][1]}`")
        factors = {f: lv for f, lv in design.levels.items() if lv}
        parts = [f"'{f}' (levels: {format_choices(lv, 20)})" for f, lv in factors.items()]
        where = (f"not a level of {' or of '.join(parts)} nor a design column" if parts
                 else "not a design column")
        hint = ""
        reference = [f for f, lv in factors.items() if term in lv]
        if reference:  # a real level without its own column: the reference level of treatment coding
            hint = (f" '{term}' is the reference level of '{reference[0]}' in this design (absorbed "
                    "into the intercept), so it has no column; use cell-means coding ('0 + "
                    f"{reference[0]} + ...') to name every level, or contrast the other levels only.")
            where = "a level without a design column"
        else:
            candidates = list(design.aliases) + [lv for lvs in factors.values() for lv in lvs]
            close = difflib.get_close_matches(term, candidates, n=1, cutoff=0.6)
            if close:
                shown = close[0] if _IDENT.match(close[0]) else f"`{close[0]}`"
                hint = f" Did you mean {shown}?"
                if not _IDENT.match(close[0]):
                    hint += " (names with characters other than letters, digits and _ go in backticks)"
        raise ContrastError(f"contrast '{self.name}' names '{term}' (position {pos + 1} of "
                            f"'{self.text}'), which is {where} (columns: "
                            f"{format_choices(design.columns, 30)}).{hint}")


def _add(a, b):
    coefs = dict(a[0])
    for k, v in b[0].items():
        coefs[k] = coefs.get(k, 0.0) + v
    return coefs, a[1] + b[1]


def _scale(a, factor: float):
    return {k: v * factor for k, v in a[0].items()}, a[1] * factor
