#!/usr/bin/env python3
"""ci/check.py: the one helper the integration tests use to read and check JSON.

    check.py get  EXPR [NAME=VALUE | NAME:=JSON ...] < DOC   print EXPR's value
    check.py test EXPR [NAME=VALUE | NAME:=JSON ...] < DOC   exit 0 if EXPR is true, 1 if false
    check.py count FILE EXPR [NAME=VALUE ...]                frames of a capture (JSON lines)
                                                             matching EXPR, printed
    check.py show FILE EXPR [NAME=VALUE ...]                 those frames, one per line
    check.py selftest                                        this file's own tests

EXPR is a Python expression over the document `d` (get/test) or one captured frame `f`
(count/show). Values from the shell are never pasted into EXPR: they are passed as
NAME=VALUE (bound to NAME as a string) or NAME:=JSON (bound to the decoded JSON value, e.g.
n:=3, flag:=true), so a MAC, a name or a number is data, not code. Also bound: vl(v), a
VLAN with untagged (None or 0) as 0; mac(s), a MAC in lowercase; first(xs), the one element
of xs (an error unless there is exactly one).

Errors are never answers: a document that is not JSON, an expression that raises, a
capture line that is not JSON, or a frame the capture could not parse (sniff.py records it
with an "error" key) exits 2 with one line on stderr saying what was wrong. A last
line without its newline is one the capture is still writing; it is skipped.
`get` prints lists, dicts, booleans and None as JSON, anything else with str().
"""

import json
import sys

USAGE = __doc__.split("\n\n")[0]


class CheckError(Exception):
    pass


def vl(v):
    return int(v or 0)


def mac(s):
    return str(s).lower()


def first(xs):
    xs = list(xs)
    if len(xs) != 1:
        raise CheckError("first(): expected exactly one element, got %d" % len(xs))
    return xs[0]


def bindings(args):
    """NAME=VALUE (a string) or NAME:=JSON (decoded) -> dict."""
    out = {}
    for a in args:
        if "=" not in a:
            raise CheckError("argument %r is not NAME=VALUE or NAME:=JSON" % a)
        name, value = a.split("=", 1)
        if name.endswith(":"):
            name = name[:-1]
            try:
                value = json.loads(value)
            except ValueError as e:
                raise CheckError("argument %s: %r is not JSON (%s)" % (name, value, e))
        if not name.isidentifier():
            raise CheckError("argument name %r is not a Python identifier" % name)
        out[name] = value
    return out


def evaluate(expr, env):
    scope = {"vl": vl, "mac": mac, "first": first, "json": json}
    scope.update(env)
    try:
        return eval(expr, scope)  # noqa: S307 - the tests' own expressions, data bound apart
    except CheckError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of the expression is reported
        shown = {k: v for k, v in env.items() if k not in ("d", "f")}
        subject = env.get("d", env.get("f"))
        raise CheckError("cannot evaluate %s%s on %s: %s: %s" % (
            expr, " with %s" % shown if shown else "",
            json.dumps(subject)[:300], type(e).__name__, e))


def load_doc(text):
    try:
        return json.loads(text)
    except ValueError as e:
        raise CheckError("not JSON (%s): %r" % (e, text[:300]))


def render(value):
    if isinstance(value, (dict, list, bool)) or value is None:
        return json.dumps(value)
    return str(value)


def frames(path):
    """The frames of a capture file: every line but a cut-short last one must be JSON, and
    no frame may be one the capture could not parse."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    lines = text.split("\n")
    # A complete file ends with "\n", so the last element is "", or a line without its
    # newline: one the capture is still writing, left for the next read.
    lines.pop()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            f = json.loads(line)
        except ValueError as e:
            raise CheckError("%s line %d is not JSON (%s): %r" % (path, i, e, line[:200]))
        if not isinstance(f, dict):
            raise CheckError("%s line %d is not a frame object: %r" % (path, i, line[:200]))
        if "error" in f:
            raise CheckError("%s line %d: a frame the capture could not parse (%s, %s bytes)"
                             % (path, i, f["error"], f.get("len")))
        f.setdefault("vlan", None)
        yield line, f


def matching(path, expr, env):
    for line, f in frames(path):
        if evaluate(expr, dict(env, f=f)):
            yield line


def run(argv, stdin):
    if not argv:
        raise CheckError(USAGE)
    cmd, rest = argv[0], argv[1:]
    if cmd in ("get", "test"):
        if not rest:
            raise CheckError("%s needs EXPR" % cmd)
        env = bindings(rest[1:])
        env["d"] = load_doc(stdin.read())
        value = evaluate(rest[0], env)
        if cmd == "get":
            return render(value), 0
        return None, 0 if value else 1
    if cmd in ("count", "show"):
        if len(rest) < 2:
            raise CheckError("%s needs FILE and EXPR" % cmd)
        try:
            hits = list(matching(rest[0], rest[1], bindings(rest[2:])))
        except OSError as e:
            raise CheckError("cannot read capture: %s" % e)
        return (str(len(hits)) if cmd == "count" else "\n".join(hits)), 0
    if cmd == "selftest":
        return selftest(), 0
    raise CheckError("unknown command %r\n%s" % (cmd, USAGE))


def main():
    try:
        out, rc = run(sys.argv[1:], sys.stdin)
    except CheckError as e:
        print("check.py: %s" % e, file=sys.stderr)
        sys.exit(2)
    if out:
        print(out)
    sys.exit(rc)


# ---------------------------------------------------------------------------------------------
# Self-test: every error path exits 2, never a count or a value.


def selftest():
    import io
    import os
    import tempfile

    def call(argv, doc=""):
        try:
            return run(argv, io.StringIO(doc))
        except CheckError as e:
            return ("ERR", str(e))

    checks = 0

    def expect(got, want, what):
        nonlocal checks
        checks += 1
        if got != want:
            raise SystemExit("check.py selftest: %s: got %r, want %r" % (what, got, want))

    def expect_err(got, what):
        nonlocal checks
        checks += 1
        if not (isinstance(got, tuple) and got[0] == "ERR"):
            raise SystemExit("check.py selftest: %s: expected an error, got %r" % (what, got))

    doc = json.dumps([{"name": "a", "rx": 3}, {"name": "b's", "rx": 0}])
    expect(call(["get", "first(i['rx'] for i in d if i['name'] == n)", "n=a"], doc), ("3", 0),
           "get with a bound string")
    expect(call(["get", "first(i['rx'] for i in d if i['name'] == n)", "n=b's"], doc), ("0", 0),
           "a quote in a bound value is data")
    expect(call(["get", "[i['name'] for i in d]"], doc), ('["a", "b\'s"]', 0), "lists as JSON")
    expect(call(["test", "len(d) == n", "n:=2"], doc), (None, 0), "test true with :=")
    expect(call(["test", "len(d) == n", "n:=3"], doc), (None, 1), "test false")
    expect_err(call(["test", "d[5]['rx']"], doc), "an expression that raises is an error")
    expect_err(call(["get", "d['x'"], doc), "a syntax error is an error")
    expect_err(call(["get", "d"], "{not json"), "a document that is not JSON")
    expect_err(call(["get", "first(d)"], doc), "first() of two")
    expect_err(call(["get", "d", "n:=[1"], doc), "a bad := value")
    expect_err(call(["get", "d", "1x=3"], doc), "a bad name")
    with tempfile.TemporaryDirectory() as tmp:
        cap = os.path.join(tmp, "cap.jsonl")

        def write(text):
            with open(cap, "w", encoding="utf-8") as fh:
                fh.write(text)

        good = [{"src": "02:00:00:00:00:01", "vlan": 10}, {"src": "02:00:00:00:00:02"}]
        write("".join(json.dumps(f) + "\n" for f in good))
        expect(call(["count", cap, "vl(f['vlan']) == v", "v:=10"]), ("1", 0), "count")
        expect(call(["count", cap, "f['vlan'] is None"]), ("1", 0), "vlan defaults to None")
        expect(call(["count", cap, "mac(f['src']) == m", "m=02:00:00:00:00:03"]), ("0", 0),
               "count of nothing")
        write("".join(json.dumps(f) + "\n" for f in good) + '{"src": "02:0')
        expect(call(["count", cap, "True"]), ("2", 0), "a line being written is skipped")
        # A leaked frame that the capture could not parse must fail a "must not appear"
        # check, not be silently left out of it.
        write(json.dumps(good[0]) + "\n" + json.dumps({"error": "IndexError()", "len": 14}) + "\n")
        expect_err(call(["count", cap, "f['src'] == 'x'"]), "an unparsable frame is an error")
        write(json.dumps(good[0]) + "\n" + "garbage\n" + json.dumps(good[1]) + "\n")
        expect_err(call(["count", cap, "True"]), "a line that is not JSON is an error")
        write("".join(json.dumps(f) + "\n" for f in good))
        expect_err(call(["count", cap, "f['no_such_key'] == 1"]),
                   "an expression that raises on a frame is an error")
        expect_err(call(["count", os.path.join(tmp, "absent.jsonl"), "True"]),
                   "a missing capture is an error")
    return "check.py selftest: %d checks passed" % checks


if __name__ == "__main__":
    main()
