"""Model formulas from users, parsed against an allow-list grammar before formulaic sees them.

formulaic evaluates any ``{...}`` or ``I(...)`` term, and any call it does not know as a plain
name, as Python code with builtins, so a formula in a shared study file could run commands.
graymatter therefore tokenises and parses formulas itself and accepts only:

- column names (``age``) and backtick-quoted column names (```left hippocampus```),
- the operators ``+ - * : **`` (the exponent a positive integer), parentheses, ``0`` and ``1``,
- ``C(column)`` and ``C(column, levels=[...])`` with text or number levels,
- the numeric transforms in :data:`TRANSFORMS` (``center``, ``scale``, ``log``, ``np.log``, ...)
  of a column or of another transform.

Anything else is refused with a message naming the offending term. Transforms and ``C`` are
computed by graymatter (no ``eval``), added to the data as columns named like the term
(``np.log(tiv)``), and the formula handed to formulaic is rebuilt from the parsed tokens with
every such term backtick-quoted, so formulaic only looks names up and evaluates nothing.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from graymatter.errors import DesignError

__all__ = ["ParsedFormula", "Transform", "parse_formula", "TRANSFORMS", "NUMPY_TRANSFORMS",
           "GRAMMAR"]

# name -> numpy function; center/scale are formulaic's stateful transforms (looked up lazily).
NUMPY_TRANSFORMS = {"log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
                    "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}
TRANSFORMS = ("center", "scale", *NUMPY_TRANSFORMS, *(f"np.{name}" for name in NUMPY_TRANSFORMS))
GRAMMAR = ("A model formula may contain only column names (quote a name with spaces or symbols "
           "in backticks, e.g. `left hippocampus`), the operators + - * : ** (integer exponent), "
           "parentheses, 0 and 1, C(column) or C(column, levels=['a', 'b']), and the transforms "
           f"{', '.join(f'{t}()' for t in TRANSFORMS)} of a column.")

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<qname>`[^`\n]*`)
  | (?P<str>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<op>\*\*|[-+*:(),=\[\]])
""", re.VERBOSE)
_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PAIRS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Transform:
    """A term graymatter computes itself: ``func`` applied to ``arg`` (a column or a Transform).

    ``name`` is the column it is added as (and formulaic's name of the term), e.g.
    ``"np.log(tiv)"`` or ``"C(group, levels=['HC', 'MDD'])"``.
    """

    name: str
    func: str
    arg: str | Transform
    levels: tuple | None = None

    @property
    def column(self) -> str:
        """The participants column the transform reads in the end."""
        return self.arg if isinstance(self.arg, str) else self.arg.column


@dataclass(frozen=True)
class ParsedFormula:
    """A formula that passed the allow-list grammar.

    Attributes
    ----------
    text : str
        The formula for formulaic, rebuilt from the tokens; transforms are backtick-quoted names.
    bare : frozenset of str
        Columns used as plain terms.
    transforms : tuple of Transform
        Computed terms, each to be added to the data under its ``name``.
    """

    text: str
    bare: frozenset
    transforms: tuple

    @property
    def columns(self) -> set[str]:
        """Every participants column the formula reads."""
        return set(self.bare) | {t.column for t in self.transforms}


def parse_formula(formula: str) -> ParsedFormula:
    """Check a model formula against the allow-list grammar and rebuild it for formulaic.

    Parameters
    ----------
    formula : str
        Right-hand side of a model, optionally starting with ``~``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    DesignError
        If the formula is empty, has a left-hand side or several parts, is not well formed, or
        contains anything outside the grammar (the message names the offending term).

    Examples
    --------
    >>> parsed = parse_formula("0 + group + age + np.log(tiv)")
    >>> parsed.text
    '0 + group + age + `np.log(tiv)`'
    >>> parse_formula("age + I(__import__('os'))")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graymatter.errors.DesignError: the model formula ... contains "I(__import__('os'))", which ...
    """
    if not isinstance(formula, str) or not formula.strip():
        raise DesignError("the model formula is empty; give e.g. '0 + group + age + sex'")
    text = formula.strip()
    start = len(formula) - len(formula.lstrip()) + (1 if text.startswith("~") else 0)
    parser = _Parser(formula, _tokenize(formula, start))
    return parser.parse()


# -- tokens ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Tok:
    kind: str  # num, name, qname, str, op, end
    text: str
    pos: int


def _tokenize(formula: str, start: int) -> list[_Tok]:
    tokens, pos = [], start
    while pos < len(formula):
        match = _TOKEN.match(formula, pos)
        if match is None:
            char = formula[pos]
            if char in "~|":
                raise DesignError(f"the model formula '{formula}' has a left-hand side or several "
                                  "parts; give only the right-hand side (e.g. '0 + group + age'): "
                                  "the images are the response")
            raise _refuse(formula, _term_at(formula, pos), f"'{char}' is not part of the grammar")
        if match.lastgroup != "space":
            tokens.append(_Tok(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(_Tok("end", "", len(formula)))
    return tokens


def _span(formula: str, pos: int, opener: int | None = None) -> str:
    """The offending text from ``pos``: to the bracket matching ``opener`` (default: ``pos``, if
    it is a bracket), else up to the next space or operator."""
    opener = pos if opener is None and formula[pos] in _PAIRS else opener
    if opener is not None:
        depth = 0
        for i in range(opener, len(formula)):
            if formula[i] in _PAIRS:
                depth += 1
            elif formula[i] in _PAIRS.values():
                depth -= 1
                if depth == 0:
                    return formula[pos:i + 1]
        return formula[pos:]
    match = re.match(r"[^\s+*:()]+", formula[pos:])
    return match.group() if match else formula[pos]


def _term_at(formula: str, pos: int) -> str:
    """The top-level term (between + - * : outside brackets and quotes) that holds ``pos``."""
    start, depth, quote = 0, 0, ""
    for i, char in enumerate(formula):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in _PAIRS:
            depth += 1
        elif char in _PAIRS.values():
            depth = max(depth - 1, 0)
        elif depth == 0 and char in "+-*:~|":
            if i >= pos:
                return formula[start:i].strip() or formula[pos]
            start = i + 1
    return formula[start:].strip() or formula[pos]


def _refuse(formula: str, culprit: str, reason: str) -> DesignError:
    return DesignError(f"the model formula {formula!r} contains {culprit!r}, which is not allowed: "
                       f"{reason}. {GRAMMAR}")


# -- parser ----------------------------------------------------------------------------------------

class _Parser:
    """Recursive descent over: sum := [+|-] product {(+|-) product}; product := inter {* inter};
    inter := power {: power}; power := atom [** integer]; atom := 0 | 1 | name | call | (sum)."""

    def __init__(self, formula: str, tokens: list[_Tok]):
        self.formula, self.tokens, self.i = formula, tokens, 0
        self.out: list[str] = []
        self.bare: set[str] = set()
        self.transforms: dict[str, Transform] = {}

    # helpers
    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str, after: str) -> _Tok:
        if self.tok.text != text or self.tok.kind not in ("op",):
            raise self.syntax(f"expected '{text}' {after}")
        return self.take()

    def syntax(self, problem: str) -> DesignError:
        where = "at the end" if self.tok.kind == "end" else f"at '{self.tok.text}' (character " \
                                                            f"{self.tok.pos + 1})"
        return DesignError(f"cannot parse the model formula '{self.formula}': {problem} {where}")

    def call_text(self, tok: _Tok) -> str:
        """``func(...)`` from the function's token to its closing parenthesis."""
        return _span(self.formula, tok.pos, opener=tok.pos + len(tok.text))

    # grammar
    def parse(self) -> ParsedFormula:
        if self.tok.kind == "end":
            raise DesignError("the model formula is empty; give e.g. '0 + group + age + sex'")
        self.sum()
        if self.tok.kind != "end":
            raise self.syntax("expected an operator (+ - * : **)")
        return ParsedFormula(text=" ".join(self.out), bare=frozenset(self.bare),
                             transforms=tuple(self.transforms.values()))

    def sum(self) -> None:
        if self.tok.kind == "op" and self.tok.text in ("+", "-"):  # unary, e.g. "-1 + age"
            self.out.append(self.take().text)
        self.chain(("+", "-"), self.product)

    def product(self) -> None:
        self.chain(("*",), self.inter)

    def inter(self) -> None:
        self.chain((":",), self.power)

    def chain(self, ops: tuple, operand) -> None:
        """``operand {op operand}`` for a left-associative binary operator level."""
        operand()
        while self.tok.kind == "op" and self.tok.text in ops:
            self.out.append(self.take().text)
            operand()

    def power(self) -> None:
        self.atom()
        if self.tok.kind == "op" and self.tok.text == "**":
            self.out.append(self.take().text)
            if self.tok.kind != "num" or not self.tok.text.isdigit() or int(self.tok.text) < 1:
                raise self.syntax("expected a positive integer exponent after '**'")
            self.out.append(self.take().text)

    def atom(self) -> None:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.out.append(self.take().text)
            self.sum()
            self.expect(")", "to close '('")
            self.out.append(")")
        elif tok.kind == "num":
            if tok.text not in ("0", "1"):
                raise _refuse(self.formula, tok.text, "the only numbers that are terms are 0 (no "
                                                      "intercept) and 1 (intercept)")
            self.out.append(self.take().text)
        elif tok.kind in ("name", "qname") and self.tokens[self.i + 1].text == "(" \
                and self.tokens[self.i + 1].kind == "op":
            term = self.call()
            self.out.append(_quote(term.name))
        elif tok.kind in ("name", "qname"):
            name = self.column()
            self.bare.add(name)
            self.out.append(_quote(name))
        elif tok.kind == "str":
            raise _refuse(self.formula, tok.text, "text literals are not terms; quote a column "
                                                  "name with backticks, e.g. `my column`")
        elif tok.kind == "op" and tok.text == "[":
            raise _refuse(self.formula, _span(self.formula, tok.pos),
                          "lists and comprehensions are not terms")
        else:
            raise self.syntax("expected a term")

    def column(self) -> str:
        tok = self.take()
        if tok.kind not in ("name", "qname"):
            self.i -= 1
            raise self.syntax("expected a column name")
        if tok.kind == "qname":
            name = tok.text[1:-1]
            if not name.strip():
                raise _refuse(self.formula, tok.text, "an empty quoted name")
            return name
        if keyword.iskeyword(tok.text):
            raise _refuse(self.formula, _span(self.formula, tok.pos),
                          f"'{tok.text}' is a Python keyword (quote a column of that name in "
                          f"backticks: `{tok.text}`)")
        if "__" in tok.text:
            raise _refuse(self.formula, tok.text, "names with double underscores are not allowed")
        if "." in tok.text:
            raise _refuse(self.formula, tok.text, "attribute access is not allowed (quote a column "
                                                  f"name that has dots in backticks: `{tok.text}`)")
        return tok.text

    def call(self) -> Transform:
        tok = self.tok
        func = tok.text
        if tok.kind == "qname" or (func != "C" and func not in TRANSFORMS):
            hint = (" (I() would run Python code; compute a derived covariate such as age squared "
                    "as a column of participants)" if func == "I" else "")
            raise _refuse(self.formula, self.call_text(tok),
                          f"'{func}' is not an allowed function{hint}")
        self.take()
        self.take()  # "("
        if func == "C":
            term = self.categorical(tok)
        else:
            nested = self.tok.kind == "name" and self.tokens[self.i + 1].text == "("
            arg = self.call() if nested else self.column()
            inner = arg.name if isinstance(arg, Transform) else arg
            term = Transform(f"{func}({inner})", func, arg)
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            raise _refuse(self.formula, self.call_text(tok),
                          f"{func}() takes one column" + (" and levels=[...]" if func == "C" else ""))
        self.take()
        self.transforms.setdefault(term.name, term)
        return term

    def categorical(self, tok: _Tok) -> Transform:
        if self.tok.kind not in ("name", "qname"):
            raise _refuse(self.formula, self.call_text(tok), "C() takes a column name first")
        column = self.column()
        if not (self.tok.kind == "op" and self.tok.text == ","):
            return Transform(f"C({column})", "C", column)
        self.take()
        if self.tok.text != "levels" or self.tokens[self.i + 1].text != "=":
            raise _refuse(self.formula, self.call_text(tok), "the only option of C() is levels=[...]")
        self.i += 2
        self.expect("[", "after 'levels='")
        levels, shown = [], []
        while True:
            sign = self.take().text if self.tok.text == "-" and self.tok.kind == "op" else ""
            lit = self.take()
            if lit.kind == "str" and not sign:
                levels.append(lit.text[1:-1])
                shown.append(repr(lit.text[1:-1]))
            elif lit.kind == "num":
                levels.append(sign + lit.text)
                shown.append(sign + lit.text)
            else:
                raise _refuse(self.formula, self.call_text(tok),
                              "levels=[...] lists only quoted text or numbers")
            if self.tok.text == "]" and self.tok.kind == "op":
                self.take()
                break
            self.expect(",", "between levels")
        return Transform(f"C({column}, levels=[{', '.join(shown)}])", "C", column, tuple(levels))


def _quote(name: str) -> str:
    """A column name as formulaic reads it as a plain lookup (never as Python code)."""
    return name if _SIMPLE.match(name) and not keyword.iskeyword(name) else f"`{name}`"
