# SPDX-License-Identifier: MIT
# A small OData $filter parser/evaluator for directory objects: eq/ne/startswith,
# any() lambdas over string collections, and/or/not, parentheses
# (concepts/filter-query-parameter.md). It does not do arithmetic, $search or ConsistencyLevel-only operators.
import re

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w-])|"
                   r"(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})|"
                   r"(?P<id>[A-Za-z_][\w.]*)|(?P<p>[()/,:]))")


class FilterError(Exception):
    pass


def _tokens(s):
    out = []
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise FilterError("Syntax error at position %d in '%s'." % (pos, s))
        pos = m.end()
        if m.group("str") is not None:
            out.append(("lit", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("num") is not None:
            out.append(("lit", float(m.group("num")) if "." in m.group("num") else int(m.group("num"))))
        elif m.group("guid") is not None:
            out.append(("lit", m.group("guid")))
        elif m.group("id") is not None:
            w = m.group("id")
            if w in ("true", "false"):
                out.append(("lit", w == "true"))
            elif w == "null":
                out.append(("lit", None))
            else:
                out.append(("id", w))
        else:
            out.append(("p", m.group("p")))
    return out


class Parser:
    def __init__(self, s):
        self.t = _tokens(s)
        self.i = 0

    def peek(self, kind=None, val=None):
        if self.i >= len(self.t):
            return False
        k, v = self.t[self.i]
        return (kind is None or k == kind) and (val is None or v == val)

    def take(self, kind, val=None):
        if not self.peek(kind, val):
            got = self.t[self.i][1] if self.i < len(self.t) else "end of input"
            raise FilterError("Syntax error: expected %s but found '%s'." % (val or kind, got))
        v = self.t[self.i][1]
        self.i += 1
        return v

    def parse(self):
        e = self.expr()
        if self.i != len(self.t):
            raise FilterError("Syntax error: unexpected '%s'." % (self.t[self.i][1],))
        return e

    def expr(self):
        e = self.term()
        while self.peek("id", "or"):
            self.i += 1
            e = ("or", e, self.term())
        return e

    def term(self):
        e = self.factor()
        while self.peek("id", "and"):
            self.i += 1
            e = ("and", e, self.factor())
        return e

    def factor(self):
        if self.peek("id", "not"):
            self.i += 1
            return ("not", self.factor())
        if self.peek("p", "("):
            self.i += 1
            e = self.expr()
            self.take("p", ")")
            return e
        name = self.take("id")
        if name in ("startswith", "endswith") and self.peek("p", "("):
            self.i += 1
            prop = self.take("id")
            self.take("p", ",")
            lit = self.take("lit")
            self.take("p", ")")
            return (name, prop, lit)
        if self.peek("p", "/"):
            self.i += 1
            fn = self.take("id")
            if fn not in ("any", "all"):
                raise FilterError("Unsupported path segment '%s'." % fn)
            self.take("p", "(")
            var = self.take("id")
            self.take("p", ":")
            v2 = self.take("id")
            if v2 != var:
                raise FilterError("Unknown range variable '%s'." % v2)
            op = self.take("id")
            lit = self.take("lit")
            self.take("p", ")")
            if op not in ("eq", "ne", "startswith"):
                raise FilterError("Unsupported operator '%s'." % op)
            return (fn, name, op, lit)
        op = self.take("id")
        if op not in ("eq", "ne", "ge", "le", "gt", "lt"):
            raise FilterError("Unsupported operator '%s'." % op)
        lit = self.take("lit")
        return ("cmp", name, op, lit)


def parse(s):
    return Parser(s).parse()


def _norm(v):
    return v.lower() if isinstance(v, str) else v


def _cmp(a, op, b):
    a, b = _norm(a), _norm(b)
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if a is None or b is None:
        return False
    try:
        return {"ge": a >= b, "le": a <= b, "gt": a > b, "lt": a < b}[op]
    except TypeError:
        return False


def evaluate(node, get):
    """get(prop) -> value. Returns bool."""
    k = node[0]
    if k == "or":
        return evaluate(node[1], get) or evaluate(node[2], get)
    if k == "and":
        return evaluate(node[1], get) and evaluate(node[2], get)
    if k == "not":
        return not evaluate(node[1], get)
    if k == "cmp":
        return _cmp(get(node[1]), node[2], node[3])
    if k in ("startswith", "endswith"):
        v = get(node[1])
        if not isinstance(v, str) or not isinstance(node[2], str):
            return False
        return v.lower().startswith(node[2].lower()) if k == "startswith" else v.lower().endswith(node[2].lower())
    if k in ("any", "all"):
        coll = get(node[1]) or []
        if not isinstance(coll, list):
            return False
        if node[2] == "startswith":
            test = [isinstance(x, str) and x.lower().startswith(str(node[3]).lower()) for x in coll]
        else:
            test = [_cmp(x, node[2], node[3]) for x in coll]
        return any(test) if k == "any" else all(test)
    return False


def props_used(node, out=None):
    out = set() if out is None else out
    if node[0] in ("or", "and"):
        props_used(node[1], out)
        props_used(node[2], out)
    elif node[0] == "not":
        props_used(node[1], out)
    else:
        out.add(node[1])
    return out


def candidates(node, lookup):
    """Set of ids that may match using equality indexes (lookup(prop, value) -> set), or None = all."""
    k = node[0]
    if k == "cmp" and node[2] == "eq" and node[3] is not None:
        return lookup(node[1], node[3])
    if k == "any" and node[2] == "eq":
        return lookup(node[1], node[3])
    if k == "or":
        a = candidates(node[1], lookup)
        b = candidates(node[2], lookup)
        if a is None or b is None:
            return None
        return a | b
    if k == "and":
        a = candidates(node[1], lookup)
        b = candidates(node[2], lookup)
        if a is None:
            return b
        if b is None:
            return a
        return a & b
    return None


def id_list(node):
    """For delta $filter: the ids of `id eq 'x' or id eq 'y' ...`, else None."""
    if node[0] == "cmp" and node[1] == "id" and node[2] == "eq" and isinstance(node[3], str):
        return [node[3]]
    if node[0] == "or":
        a, b = id_list(node[1]), id_list(node[2])
        if a is None or b is None:
            return None
        return a + b
    return None
