//! The characters that must not reach a person unseen: control, bidi and
//! invisible format characters.
//!
//! A name or a reason that one node wrote and another node's operator reads
//! can hide a terminal escape sequence, reorder itself with a bidi control, or
//! look like another name through a zero-width character. [`hidden_kind`] is
//! the one definition of that class: the handshake refuses a peer's name or
//! reason holding one (`labnet-protocol`), the config refuses a node name
//! holding one (`labnet-config`), the CLI prints each as a visible escape, and
//! the anonymizer's normalization drops them from what it checks and publishes.
//! It is a crate of its own, with no dependencies, so that protocol and config
//! share the class while depending on neither of each other.

/// What kind of character must not appear in a name an operator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenKind {
    /// A C0 or C1 control character or DEL (line breaks, tabs and ESC, which
    /// starts terminal escape sequences, among them).
    Control,
    /// A bidirectional control (embeddings, overrides, isolates and marks),
    /// which reorders what is shown after it: "Modena" can be made to read as
    /// another city.
    Bidi,
    /// A zero-width, invisible or formatting character (zero-width space and
    /// joiners, soft hyphen, byte-order mark, variation selectors, tags, line
    /// and paragraph separators, fillers), which makes two different names
    /// look the same.
    Invisible,
}

impl HiddenKind {
    fn describe(self) -> &'static str {
        match self {
            HiddenKind::Control => "a control character",
            HiddenKind::Bidi => "a bidi control",
            HiddenKind::Invisible => "an invisible character",
        }
    }
}

/// Whether `c` is a character a name must not contain, and of which kind.
///
/// The class is Unicode's control (Cc) and format (Cf) characters, the line and
/// paragraph separators, and the characters that render as nothing although
/// they are letters or marks (Hangul fillers, variation selectors, the
/// combining grapheme joiner).
pub fn hidden_kind(c: char) -> Option<HiddenKind> {
    if c.is_control() {
        return Some(HiddenKind::Control);
    }
    match c {
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some(HiddenKind::Bidi),
        '\u{00AD}'
        | '\u{034F}'
        | '\u{0600}'..='\u{0605}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{2060}'..='\u{2065}'
        | '\u{206A}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}' => Some(HiddenKind::Invisible),
        _ => None,
    }
}

/// The first character of a text that [`hidden_kind`] flags: which, what
/// kind, and where (counted in characters from 1, as a person counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HiddenChar {
    /// The character.
    pub character: char,
    /// Its kind.
    pub kind: HiddenKind,
    /// Its position, in characters, the first being 1.
    pub position: usize,
}

impl std::fmt::Display for HiddenChar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (U+{:04X}) at character {}",
            self.kind.describe(),
            u32::from(self.character),
            self.position
        )
    }
}

/// Checks that a text an operator will read (a node name, a refusal reason)
/// holds nothing [`hidden_kind`] flags; else names the first such character.
pub fn check_shown_text(text: &str) -> Result<(), HiddenChar> {
    match text
        .chars()
        .enumerate()
        .find_map(|(i, c)| hidden_kind(c).map(|kind| (i, c, kind)))
    {
        None => Ok(()),
        Some((i, character, kind)) => Err(HiddenChar {
            character,
            kind,
            position: i + 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hidden_class_names_kind_and_position() {
        assert_eq!(check_shown_text("Modena"), Ok(()));
        assert_eq!(
            check_shown_text("ab\u{061C}"),
            Err(HiddenChar {
                character: '\u{061C}',
                kind: HiddenKind::Bidi,
                position: 3
            })
        );
        for c in ['\n', '\t', '\r', '\u{7f}', '\u{85}'] {
            assert_eq!(hidden_kind(c), Some(HiddenKind::Control), "{c:?}");
        }
        for c in [
            '\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}',
        ] {
            assert_eq!(hidden_kind(c), Some(HiddenKind::Bidi), "{c:?}");
        }
        for c in [
            '\u{00AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2028}',
            '\u{E0041}',
            '\u{FE0F}',
            '\u{3164}',
        ] {
            assert_eq!(hidden_kind(c), Some(HiddenKind::Invisible), "{c:?}");
        }
        for c in ['a', 'é', ' ', '-', '\'', 'Ω', '\u{0301}'] {
            assert_eq!(hidden_kind(c), None, "{c:?}");
        }
    }
}
