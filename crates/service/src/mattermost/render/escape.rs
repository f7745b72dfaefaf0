//! Making user-supplied text safe in a Mattermost post: reasons become code spans they cannot
//! close (upstream's `MarkdownEscape`, truncated by characters), names are backslash-escaped,
//! and neither can mention `@channel`, link, or reorder the line with bidi controls.

/// Upstream's limit for request, resolution and review reasons.
pub const REASON_LIMIT: usize = 500;

/// Zero-width no-break space: after a backtick it keeps backtick runs at length one.
const ZWNBSP: char = '\u{FEFF}';
/// Zero-width space: after an `@` it stops Mattermost (server and client) seeing a mention.
const ZWSP: char = '\u{200B}';

/// Upstream `MarkdownEscape`: trims; empty → `(empty)`; otherwise "```\n" + text + "```",
/// every backtick followed by U+FEFF (counting twice), cut after `limit` characters with
/// " (truncated)". Unlike upstream it counts characters, not bytes. Placed after a label
/// ("**Reason**: ```\n…```") the delimiters form a code span the text cannot close.
///
/// Beyond upstream: line breaks become spaces (a code span renders them as spaces anyway, and
/// a blank line or a `#` at a line start would end the span), bidi controls become U+FFFD,
/// mentions are defused, and a first character that could start a block gets a U+FEFF before it.
pub fn markdown_escape(text: &str, limit: usize) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(empty)".to_string();
    }
    let mut out = String::with_capacity(text.len().min(limit * 4) + 20);
    out.push_str("```\n");
    if starts_a_block(text) {
        out.push(ZWNBSP);
    }
    let mut count = 0usize;
    let mut truncated = false;
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if count >= limit {
            truncated = true;
            break;
        }
        match c {
            '`' => {
                out.push('`');
                out.push(ZWNBSP);
                count += 2;
            }
            '\r' if chars.peek() == Some(&'\n') => continue,
            c if is_line_break(c) => {
                out.push(' ');
                count += 1;
            }
            c if is_bidi_control(c) => {
                out.push('\u{FFFD}');
                count += 1;
            }
            '@' if starts_mention(prev) => {
                out.push('@');
                out.push(ZWSP);
                count += 1;
            }
            c => {
                out.push(c);
                count += 1;
            }
        }
        prev = Some(c);
    }
    out.push_str("```");
    if truncated {
        out.push_str(" (truncated)");
    }
    out
}

/// Zero-width characters dropped, bidi controls as U+FFFD, line breaks and controls as spaces.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !is_zero_width(*c))
        .map(|c| {
            if is_bidi_control(c) {
                '\u{FFFD}'
            } else if c.is_control() || is_line_break(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Escapes a name, role, resource or title for use inside a line of markdown: markdown
/// punctuation is backslash-escaped, `@` mentions, `~channel` links, `#hashtags`, URLs and
/// `www.` autolinks are defused, line breaks and control characters become spaces, zero-width
/// characters are dropped and bidi controls become U+FFFD. The result has at most `max_chars`
/// characters (ending in `…` when cut).
pub fn inline(text: &str, max_chars: usize) -> String {
    let cleaned = clean(text);
    let cleaned = cleaned.trim();
    let chars: Vec<char> = cleaned.chars().collect();
    // Each character becomes one or two: a backslash before it, or a ZWSP after an `@`.
    // (Fixed-size pieces: this runs for every name on every post, so no allocation per char.)
    let piece = |i: usize, c: char| -> ([char; 2], usize) {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | ':' | '&' | '$' => {
                (['\\', c], 2)
            }
            '@' if starts_mention(i.checked_sub(1).map(|j| chars[j])) => (['@', ZWSP], 2),
            '.' if follows_www(&chars[..i]) => (['\\', '.'], 2),
            c => ([c, c], 1),
        }
    };
    // ZWSP is invisible and does not count.
    let visible = |p: &[char]| p.iter().filter(|c| **c != ZWSP).count();
    let total: usize = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let (p, n) = piece(i, c);
            visible(&p[..n])
        })
        .sum();
    let budget = if total <= max_chars {
        max_chars
    } else {
        max_chars.saturating_sub(1)
    };
    let mut out = String::with_capacity(cleaned.len() + 8);
    let mut used = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        let (p, n) = piece(i, c);
        let p = &p[..n];
        if used + visible(p) > budget {
            out.push('…');
            return out;
        }
        out.extend(p);
        used += visible(p);
    }
    out
}

/// A value for an inline code span (request ids in `tsh` commands): only characters that
/// cannot end the span or the line are kept.
pub fn code_literal(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
        .take(100)
        .collect()
}

/// A URL for a markdown link `[url](url)`: characters that would end the destination or the
/// text are percent-encoded.
pub fn link_url(url: &url::Url) -> String {
    let mut out = String::with_capacity(url.as_str().len());
    for c in url.as_str().chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            ' ' => out.push_str("%20"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '`' => out.push_str("%60"),
            c => out.push(c),
        }
    }
    out
}

/// An `@` starts a mention when nothing word-like precedes it (Mattermost's `\B@`).
fn starts_mention(prev: Option<char>) -> bool {
    !prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_')
}

fn follows_www(before: &[char]) -> bool {
    let n = before.len();
    n >= 3
        && before[n - 3..]
            .iter()
            .zip("www".chars())
            .all(|(a, b)| a.eq_ignore_ascii_case(&b))
        && (n == 3 || !before[n - 4].is_alphanumeric())
}

/// Whether text placed at the start of a line could begin a markdown block (heading, quote,
/// list, rule, table, HTML) instead of continuing the paragraph.
fn starts_a_block(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if first.is_ascii_digit() {
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        return digits <= 9 && matches!(text.chars().nth(digits), Some('.' | ')'));
    }
    // A lone backtick is no block (it is followed by U+FEFF, so no fence can form).
    !first.is_alphanumeric() && first != '`'
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Upstream's escape tests (lib/markdown escape_test.go), ported.
    #[test]
    fn whitespace_only_is_empty() {
        assert_eq!(markdown_escape("     ", 500), "(empty)");
    }

    #[test]
    fn text_becomes_a_fenced_span() {
        assert_eq!(markdown_escape("abc", 500), "```\nabc```");
    }

    #[test]
    fn backticks_are_followed_by_a_zero_width_no_break_space_and_count_twice() {
        assert_eq!(
            markdown_escape("a`b", 500),
            "```\na`\u{FEFF}b```",
            "one backtick"
        );
        assert_eq!(
            markdown_escape("```", 4),
            "```\n`\u{FEFF}`\u{FEFF}``` (truncated)",
            "the third backtick is over the limit of 4"
        );
    }

    #[test]
    fn truncates_after_the_limit_and_says_so() {
        assert_eq!(
            markdown_escape("  123456789012345  ", 10),
            "```\n1234567890``` (truncated)"
        );
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        let escaped = markdown_escape(&"é".repeat(20), 10);
        assert_eq!(escaped, format!("```\n{}``` (truncated)", "é".repeat(10)));
    }

    // The upstream suite's expectations for 4000-character reasons.
    #[test]
    fn suite_request_reason_is_cut_to_489_a() {
        let reason = format!("because of {}", "A".repeat(4000));
        assert_eq!(
            markdown_escape(&reason, REASON_LIMIT),
            format!("```\nbecause of {}``` (truncated)", "A".repeat(489))
        );
    }

    #[test]
    fn suite_denial_reason_is_cut_to_491_a() {
        let reason = format!("not okay {}", "A".repeat(4000));
        assert_eq!(
            markdown_escape(&reason, REASON_LIMIT),
            format!("```\nnot okay {}``` (truncated)", "A".repeat(491))
        );
    }

    #[test]
    fn a_reason_cannot_start_a_block_or_break_lines_or_mention() {
        let e = markdown_escape("# @channel\n\n> [x](http://e.vil)", 500);
        assert_eq!(e, "```\n\u{FEFF}# @\u{200B}channel  > [x](http://e.vil)```");
        assert!(!e.contains("\n\n"));
    }

    #[test]
    fn inline_escapes_markdown_and_defuses_mentions_and_links() {
        assert_eq!(inline("alice", 100), "alice");
        assert_eq!(
            inline("reviewer1@example.com", 100),
            "reviewer1@example.com"
        );
        assert_eq!(inline("@here", 100), "@\u{200B}here");
        assert_eq!(
            inline("[x](https://e.vil) *b* ~town #tag", 100),
            "\\[x\\](https\\://e.vil) \\*b\\* \\~town \\#tag"
        );
        assert_eq!(inline("go www.e.vil", 100), "go www\\.e.vil");
        assert_eq!(inline("a\nb\u{202E}c\u{200B}d", 100), "a b\u{FFFD}cd");
    }

    #[test]
    fn inline_cuts_long_values_with_an_ellipsis() {
        assert_eq!(inline("abcdefgh", 5), "abcd…");
        assert_eq!(inline("abcde", 5), "abcde");
        assert_eq!(inline("a*b*c", 4), "a\\*…");
    }

    /// `inline` as first written (a `Vec` per character), kept as the reference the
    /// allocation-free version must match exactly.
    fn inline_reference(text: &str, max_chars: usize) -> String {
        let cleaned = clean(text);
        let cleaned = cleaned.trim();
        let chars: Vec<char> = cleaned.chars().collect();
        let pieces: Vec<Vec<char>> = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| match c {
                '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | ':' | '&'
                | '$' => vec!['\\', c],
                '@' if starts_mention(i.checked_sub(1).map(|j| chars[j])) => vec!['@', ZWSP],
                '.' if follows_www(&chars[..i]) => vec!['\\', '.'],
                c => vec![c],
            })
            .collect();
        let visible = |p: &Vec<char>| p.iter().filter(|c| **c != ZWSP).count();
        let total: usize = pieces.iter().map(visible).sum();
        let budget = if total <= max_chars {
            max_chars
        } else {
            max_chars.saturating_sub(1)
        };
        let mut out = String::new();
        let mut used = 0usize;
        for piece in &pieces {
            if used + visible(piece) > budget {
                out.push('…');
                return out;
            }
            out.extend(piece);
            used += visible(piece);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn inline_matches_its_reference_on_any_text(
            text in "(\\PC|[@.wW`*_\\\\\n\u{200B}\u{202E} ]){0,60}",
            max in 0usize..70,
        ) {
            proptest::prop_assert_eq!(inline(&text, max), inline_reference(&text, max));
        }
    }
}
