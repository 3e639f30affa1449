# Flatten a JSON document into one line per scalar: PATH<TAB>VALUE.
#
# busybox has no JSON tool, and the guest must read meta_data.json from the
# metadata service or the config drive, so this is a small recursive-descent
# parser in (busybox) awk. Paths are object keys and array indexes joined
# by "/", e.g.
#     /hostname	vm-1.novalocal
#     /public_keys/mykey	ssh-rsa AAAA... me@host\n
#     /keys/0/type	ssh
# Strings are unescaped except for \n and \r, which stay as the two
# characters backslash-n / backslash-r so that every value fits on one
# line (callers turn them into newlines where they want them).  \uXXXX
# becomes the character for ASCII code points and "?" otherwise.  null,
# true, false and numbers are printed as written.  On malformed input the
# script prints what it parsed so far, reports on stderr and exits 1.
#
# Usage: awk -f json.awk FILE

{ doc = doc $0 "\n" }

END {
    n = length(doc)
    pos = 1
    HEX = "0123456789abcdef"
    parse_value("")
    skip_ws()
    if (pos <= n) fail("trailing data")
    exit failed
}

function fail(what) {
    if (!failed) printf "json.awk: %s at offset %d\n", what, pos > "/dev/stderr"
    failed = 1
    pos = n + 1             # stop every loop above us
}

function skip_ws(    c) {
    while (pos <= n) {
        c = substr(doc, pos, 1)
        if (c != " " && c != "\t" && c != "\n" && c != "\r") break
        pos++
    }
}

function emit(path, value) {
    if (!failed) print (path == "" ? "/" : path) "\t" value
}

function parse_value(path,    c, lit) {
    skip_ws()
    c = substr(doc, pos, 1)
    if (c == "{") parse_object(path)
    else if (c == "[") parse_array(path)
    else if (c == "\"") emit(path, parse_string())
    else if (match(substr(doc, pos), /^(true|false|null|-?[0-9][0-9.eE+-]*)/)) {
        lit = substr(doc, pos, RLENGTH)
        pos += RLENGTH
        emit(path, lit)
    } else fail("unexpected character '" c "'")
}

function parse_object(path,    key, c) {
    pos++                                   # the "{"
    skip_ws()
    if (substr(doc, pos, 1) == "}") { pos++; return }
    while (pos <= n) {
        skip_ws()
        if (substr(doc, pos, 1) != "\"") { fail("expected a key"); return }
        key = parse_string()
        skip_ws()
        if (substr(doc, pos, 1) != ":") { fail("expected ':'"); return }
        pos++
        parse_value(path "/" key)
        skip_ws()
        c = substr(doc, pos, 1)
        pos++
        if (c == "}") return
        if (c != ",") { pos--; fail("expected ',' or '}'"); return }
    }
    fail("unterminated object")
}

function parse_array(path,    i, c) {
    pos++                                   # the "["
    skip_ws()
    if (substr(doc, pos, 1) == "]") { pos++; return }
    for (i = 0; pos <= n; i++) {
        parse_value(path "/" i)
        skip_ws()
        c = substr(doc, pos, 1)
        pos++
        if (c == "]") return
        if (c != ",") { pos--; fail("expected ',' or ']'"); return }
    }
    fail("unterminated array")
}

# Returns the decoded string that starts at pos (on its opening quote).
function parse_string(    out, c, e, code) {
    pos++
    out = ""
    while (pos <= n) {
        # Copy the run of plain characters in one go: fast for long keys.
        if (match(substr(doc, pos), /^[^"\\]+/)) {
            out = out substr(doc, pos, RLENGTH)
            pos += RLENGTH
        }
        c = substr(doc, pos, 1)
        if (c == "\"") { pos++; return out }
        if (c != "\\") break
        e = substr(doc, pos + 1, 1)
        pos += 2
        if (e == "n" || e == "r") out = out "\\" e
        else if (e == "t") out = out "\t"
        else if (e == "b" || e == "f") out = out ""
        else if (e == "u") {
            code = hex4(substr(doc, pos, 4))
            pos += 4
            out = out (code >= 32 && code < 127 ? sprintf("%c", code) : "?")
        } else out = out e                  # \" \\ \/
    }
    fail("unterminated string")
    return out
}

function hex4(s,    i, v, d) {
    v = 0
    s = tolower(s)
    for (i = 1; i <= 4; i++) {
        d = index(HEX, substr(s, i, 1))
        if (d == 0) return -1
        v = v * 16 + d - 1
    }
    return v
}
