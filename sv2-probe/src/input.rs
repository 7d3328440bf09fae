//! Reading command input: hex text (frames) and stdin.

use std::fmt;
use std::io::{IsTerminal, Read};

use anyhow::{bail, Context};

/// Hex text that could not be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// A character that is neither a hex digit, whitespace, nor part of a `0x` prefix.
    InvalidChar { ch: char, offset: usize },
    /// An odd number of hex digits in total.
    OddLength { digits: usize },
}

impl HexError {
    /// Byte offset in the text where the problem is (the end of the text for an odd length).
    pub fn offset(&self, text_len: usize) -> usize {
        match self {
            HexError::InvalidChar { offset, .. } => *offset,
            HexError::OddLength { .. } => text_len,
        }
    }
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::InvalidChar { ch, offset } => {
                write!(f, "invalid hex character {ch:?} at text offset {offset}")
            }
            HexError::OddLength { digits } => {
                write!(f, "odd number of hex digits ({digits})")
            }
        }
    }
}

/// Parses hex text into bytes. Whitespace (spaces, tabs, newlines) is ignored anywhere, and every
/// whitespace-separated word may start with `0x` or `0X`. Digits of adjacent words join up, so
/// `"00 80 1a"` and `"0x0080\n0x1a"` both give `[0x00, 0x80, 0x1a]`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    let mut word_start = true;
    let mut chars = text.char_indices().peekable();
    while let Some((offset, ch)) = chars.next() {
        if ch.is_whitespace() {
            word_start = true;
            continue;
        }
        if word_start && ch == '0' && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            word_start = false;
            continue;
        }
        word_start = false;
        let Some(nibble) = ch.to_digit(16) else {
            return Err(HexError::InvalidChar { ch, offset });
        };
        // `to_digit(16)` is below 16.
        let nibble = nibble as u8;
        digits += 1;
        match high.take() {
            None => high = Some(nibble),
            Some(h) => out.push(h << 4 | nibble),
        }
    }
    if high.is_some() {
        return Err(HexError::OddLength { digits });
    }
    Ok(out)
}

/// All of stdin as text. Refuses to wait on an interactive terminal: with no argument and no pipe
/// the user most likely forgot the input.
pub fn read_stdin(what: &str) -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no {what} given: pass them as arguments or pipe them on stdin");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context("reading stdin (it must be UTF-8 text)")?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_prefixes_are_ignored() {
        assert_eq!(parse_hex("00801a").unwrap(), [0x00, 0x80, 0x1a]);
        assert_eq!(parse_hex(" 0x0080\n0X1A \t").unwrap(), [0x00, 0x80, 0x1a]);
        assert_eq!(parse_hex("0 08 01a").unwrap(), [0x00, 0x80, 0x1a]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("0x").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_characters_and_odd_lengths_are_located() {
        assert_eq!(
            parse_hex("00 8g"),
            Err(HexError::InvalidChar { ch: 'g', offset: 4 })
        );
        // `0x` is a prefix only at the start of a word.
        assert_eq!(
            parse_hex("000x12"),
            Err(HexError::InvalidChar { ch: 'x', offset: 3 })
        );
        assert_eq!(parse_hex("008"), Err(HexError::OddLength { digits: 3 }));
    }
}
