//! The small part of Python's regular expressions that server name
//! filters use (Nova applies `re.search` to names): literals, `.`,
//! escapes (`\d`, `\w`, `\s`, `\.`), classes `[a-z0-9]` / `[^…]`,
//! quantifiers `*`, `+`, `?`, and the anchors `^` and `$`. Patterns it
//! cannot read fall back to substring matching.

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Lit(char),
    Class(Vec<(char, char)>, bool),
    Digit,
    Word,
    Space,
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => c != '\n',
            Atom::Lit(l) => *l == c,
            Atom::Class(ranges, negated) => {
                ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *negated
            }
            Atom::Digit => c.is_ascii_digit(),
            Atom::Word => c.is_alphanumeric() || c == '_',
            Atom::Space => c.is_whitespace(),
        }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    max: usize,
}

struct Pattern {
    start: bool,
    end: bool,
    pieces: Vec<Piece>,
}

fn escape(c: char) -> Atom {
    match c {
        'd' => Atom::Digit,
        'w' => Atom::Word,
        's' => Atom::Space,
        other => Atom::Lit(other),
    }
}

fn parse(p: &str) -> Option<Pattern> {
    let mut chars: Vec<char> = p.chars().collect();
    let start = chars.first() == Some(&'^');
    if start {
        chars.remove(0);
    }
    let end = chars.last() == Some(&'$') && !(chars.len() >= 2 && chars[chars.len() - 2] == '\\');
    if end {
        chars.pop();
    }
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let atom = match chars[i] {
            '.' => Atom::Any,
            '\\' => {
                i += 1;
                escape(*chars.get(i)?)
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                while i < chars.len() && (chars[i] != ']' || first) {
                    first = false;
                    let mut a = chars[i];
                    if a == '\\' {
                        i += 1;
                        a = *chars.get(i)?;
                        match escape(a) {
                            Atom::Digit => {
                                ranges.push(('0', '9'));
                                i += 1;
                                continue;
                            }
                            Atom::Lit(l) => a = l,
                            _ => return None,
                        }
                    }
                    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']')
                    {
                        ranges.push((a, chars[i + 2]));
                        i += 3;
                    } else {
                        ranges.push((a, a));
                        i += 1;
                    }
                }
                if i >= chars.len() {
                    return None;
                }
                Atom::Class(ranges, negated)
            }
            '(' | ')' | '|' | '{' | '}' | '*' | '+' | '?' => return None,
            c => Atom::Lit(c),
        };
        i += 1;
        let (min, max) = match chars.get(i) {
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('?') => (0, 1),
            _ => (1, 1),
        };
        if max != 1 || min != 1 {
            i += 1;
        }
        pieces.push(Piece { atom, min, max });
    }
    Some(Pattern { start, end, pieces })
}

fn match_here(pieces: &[Piece], text: &[char], end: bool) -> bool {
    let Some((p, rest)) = pieces.split_first() else {
        return !end || text.is_empty();
    };
    let mut n = 0;
    while n < p.max && n < text.len() && p.atom.matches(text[n]) {
        n += 1;
    }
    // Greedy, backing off to the minimum.
    loop {
        if n >= p.min && match_here(rest, &text[n..], end) {
            return true;
        }
        if n == 0 || n <= p.min {
            return false;
        }
        n -= 1;
    }
}

/// `re.search(pattern, text)` for the supported subset.
pub fn search(pattern: &str, text: &str) -> bool {
    let Some(p) = parse(pattern) else {
        return text.contains(pattern);
    };
    let chars: Vec<char> = text.chars().collect();
    if p.start {
        return match_here(&p.pieces, &chars, p.end);
    }
    (0..=chars.len()).any(|i| match_here(&p.pieces, &chars[i..], p.end))
}

#[cfg(test)]
mod tests {
    use super::search;

    #[test]
    fn python_like_search() {
        assert!(search(r"^.*\-instance\-[0-9]+$", "tempest-x-instance-123"));
        assert!(!search(r"^.*\-instance\-[0-9]+$", "tempest-x-instance-12a"));
        assert!(search("vm", "my-vm-1"));
        assert!(!search("^vm", "my-vm-1"));
        assert!(search("^my", "my-vm-1"));
        assert!(search(r"1$", "my-vm-1"));
        assert!(search("v.?m", "vm"));
        assert!(search("[^a-z]vm", "1vm"));
        assert!(search("a(b", "xa(b"), "unsupported patterns are substrings");
    }
}
