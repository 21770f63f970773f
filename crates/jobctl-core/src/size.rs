//! Byte sizes in systemd's style: `10M`, `512K`, `1.5G`, `4096`.
//!
//! Suffixes are base 1024 as in systemd's `parse_size()` (`K`, `M`, `G`, `T`,
//! `P`, `E`, optionally followed by `iB` or `B`), so a value that validates here
//! means the same in `MemoryMax=`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

const SUFFIXES: &[(char, u32)] = &[('K', 1), ('M', 2), ('G', 3), ('T', 4), ('P', 5), ('E', 6)];

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeError {
    #[error("empty size")]
    Empty,
    #[error(
        "\"{0}\" is not a size (write a number with an optional K, M, G or T suffix, e.g. \"10M\")"
    )]
    Malformed(String),
    #[error("size is too large")]
    Overflow,
}

impl ByteSize {
    pub const fn from_bytes(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    pub const fn bytes(self) -> u64 {
        self.0
    }

    pub fn parse(input: &str) -> Result<Self, SizeError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(SizeError::Empty);
        }
        let malformed = || SizeError::Malformed(text.to_string());
        let number_len = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_len);
        let suffix = suffix.trim_start();
        let exponent = match suffix {
            "" | "B" => 0,
            _ => {
                let mut chars = suffix.chars();
                let letter = chars.next().ok_or_else(malformed)?;
                let tail: String = chars.collect();
                if !(tail.is_empty() || tail == "B" || tail == "iB") {
                    return Err(malformed());
                }
                SUFFIXES
                    .iter()
                    .find(|(c, _)| *c == letter)
                    .map(|(_, e)| *e)
                    .ok_or_else(malformed)?
            }
        };
        let multiplier = 1024u64.checked_pow(exponent).ok_or(SizeError::Overflow)?;
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
            return Err(malformed());
        }
        let integer: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| SizeError::Overflow)?
        };
        let mut bytes = integer.checked_mul(multiplier).ok_or(SizeError::Overflow)?;
        let mut divisor = 1u64;
        for digit in frac_part.bytes() {
            divisor = divisor.checked_mul(10).ok_or(SizeError::Overflow)?;
            bytes = bytes
                .checked_add(u64::from(digit - b'0') * multiplier / divisor)
                .ok_or(SizeError::Overflow)?;
        }
        Ok(ByteSize(bytes))
    }
}

/// Serialized as a number of bytes.
impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ByteSize::parse(s)
    }
}

/// Formats with the largest suffix that divides the value exactly (`10M`,
/// `1536K`, `100`), so that the output parses back to the same value.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, exponent) in SUFFIXES.iter().rev() {
            let unit = 1024u64.pow(*exponent);
            if self.0 != 0 && self.0.is_multiple_of(unit) {
                return write!(f, "{}{letter}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(ByteSize::parse("4096").unwrap().bytes(), 4096);
        assert_eq!(ByteSize::parse("10M").unwrap().bytes(), 10 << 20);
        assert_eq!(ByteSize::parse("10MiB").unwrap().bytes(), 10 << 20);
        assert_eq!(ByteSize::parse("1.5G").unwrap().bytes(), 3 << 29);
        assert_eq!(ByteSize::parse("512K").unwrap().bytes(), 512 << 10);
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(ByteSize::parse(" "), Err(SizeError::Empty));
        assert!(matches!(
            ByteSize::parse("10X"),
            Err(SizeError::Malformed(_))
        ));
        assert!(matches!(ByteSize::parse("M"), Err(SizeError::Malformed(_))));
        assert!(matches!(
            ByteSize::parse("1.2.3"),
            Err(SizeError::Malformed(_))
        ));
        assert!(matches!(
            ByteSize::parse("-1"),
            Err(SizeError::Malformed(_))
        ));
        assert_eq!(ByteSize::parse("20E"), Err(SizeError::Overflow));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["10M", "1536K", "100", "1G"] {
            assert_eq!(ByteSize::parse(text).unwrap().to_string(), text);
        }
    }
}
