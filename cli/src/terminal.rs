//! Text from elsewhere, made safe to print on the operator's terminal.
//!
//! Much of what the CLI prints was written by someone else: a peer's name, the
//! titles and text of the practices it published, the name in a pending
//! request, a refusal reason. A terminal obeys the escape sequences in what it
//! prints (ESC ] 0 ; sets the window title, CSI sequences move the cursor and
//! rewrite lines), and bidi controls reorder what follows them, so a peer
//! could make "Bologna" read as another city or hide a line of output.
//!
//! Every character [`labnet_protocol::handshake::hidden_kind`] flags (control,
//! bidi and invisible format characters, the class the handshake refuses in
//! names) is therefore shown as its escape, e.g. `\u{1b}`: visible, so the
//! operator sees that something is there, and unambiguous, so two names that
//! differ only in a hidden character do not look the same.
//!
//! [`line`] is for one-line fields (names, titles, table cells); [`text`]
//! keeps the line breaks of multi-line text (a practice's summary). `--json`
//! output is not cleaned: it is exact, and serde escapes control characters.

use labnet_protocol::handshake::hidden_kind;

/// `s` as one line for the terminal: every hidden character (line breaks
/// included) shown as its escape.
pub(crate) fn line(s: &str) -> String {
    clean(s, false)
}

/// `s` as lines for the terminal: like [`line`], but line breaks (`\n`) and
/// tabs stay. A carriage return does not: it would let the text overwrite
/// its own line.
pub(crate) fn text(s: &str) -> String {
    clean(s, true)
}

fn clean(s: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let kept = keep_lines && matches!(c, '\n' | '\t');
        if hidden_kind(c).is_some() && !kept {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer name that would retitle the terminal window (OSC 0, ended by
    /// BEL), move the cursor (CSI, in its 8-bit C1 form too) or reverse the
    /// rest of the line (RLO) prints as visible escapes instead.
    #[test]
    fn escape_sequences_and_bidi_controls_print_as_visible_escapes() {
        for (given, shown) in [
            ("Bologna\u{1b}]0;pwned\u{7}", "Bologna\\u{1b}]0;pwned\\u{7}"),
            ("a\u{9b}2Jb", "a\\u{9b}2Jb"),
            ("\u{202E}anedoM", "\\u{202e}anedoM"),
            ("Mo\u{200B}dena\u{2066}", "Mo\\u{200b}dena\\u{2066}"),
            ("two\nlines\r", "two\\u{a}lines\\u{d}"),
        ] {
            assert_eq!(line(given), shown, "{given:?}");
        }
        for kept in ["Thessaloníki", "Θεσσαλονίκη", "Київ", "Pont-de-Claix «ok»"]
        {
            assert_eq!(line(kept), kept);
        }
    }

    #[test]
    fn multi_line_text_keeps_its_lines_but_not_carriage_returns_or_escapes() {
        assert_eq!(
            text("first\n\tsecond\r\u{1b}[2K"),
            "first\n\tsecond\\u{d}\\u{1b}[2K"
        );
    }
}
