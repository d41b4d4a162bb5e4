//! Refuses JSON numbers that would be stored with a different value.
//!
//! serde_json (without `arbitrary_precision`, which the workspace cannot use)
//! keeps integers in i64/u64 and everything else in an f64, silently
//! rounding: `12345678901234567890123` comes back as `1.2345678901234568e22`.
//! For figures in a funder's report that is a wrong value, so input is
//! checked at the door against the raw text, with the field's path.

use std::fmt::Write as _;

/// A number in the input that cannot be kept exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InexactNumber {
    /// Where it is, e.g. `amount` or `items[2].price`.
    pub path: String,
    /// The number as written.
    pub literal: String,
    /// Why it cannot be kept.
    pub why: &'static str,
}

impl std::fmt::Display for InexactNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "field {}: the number {} cannot be stored exactly ({}); to keep every digit, write it as a string, \
             e.g. \"{}\"",
            self.path, self.literal, self.why, self.literal
        )
    }
}

impl std::error::Error for InexactNumber {}

/// Checks every number in `json`, which must already be valid JSON (parse it
/// with serde_json first: this scanner trusts the syntax).
pub fn check(json: &str) -> Result<(), InexactNumber> {
    let mut s = Scanner { text: json, pos: 0, path: Vec::new() };
    s.value()
}

enum Segment {
    Key(String),
    Index(usize),
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    path: Vec<Segment>,
}

impl Scanner<'_> {
    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.pos).copied().unwrap_or(0)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<(), InexactNumber> {
        self.skip_ws();
        match self.peek() {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                self.string();
                Ok(())
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                // true, false, null
                while self.peek().is_ascii_alphabetic() {
                    self.pos += 1;
                }
                Ok(())
            }
        }
    }

    /// Skips a string; returns its raw text including the quotes.
    fn string(&mut self) -> &str {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                0 => break,
                _ => self.pos += 1,
            }
        }
        &self.text[start..self.pos]
    }

    fn object(&mut self) -> Result<(), InexactNumber> {
        self.pos += 1;
        loop {
            self.skip_ws();
            match self.peek() {
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                b',' => self.pos += 1,
                b'"' => {
                    let raw = self.string();
                    let key = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string());
                    self.skip_ws();
                    self.pos += 1; // ':'
                    self.path.push(Segment::Key(key));
                    self.value()?;
                    self.path.pop();
                }
                _ => return Ok(()), // not reached for valid JSON
            }
        }
    }

    fn array(&mut self) -> Result<(), InexactNumber> {
        self.pos += 1;
        let mut index = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                b',' => {
                    self.pos += 1;
                    index += 1;
                }
                0 => return Ok(()),
                _ => {
                    self.path.push(Segment::Index(index));
                    self.value()?;
                    self.path.pop();
                }
            }
        }
    }

    fn number(&mut self) -> Result<(), InexactNumber> {
        let start = self.pos;
        while matches!(self.peek(), b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.pos += 1;
        }
        let literal = &self.text[start..self.pos];
        match inexact(literal) {
            None => Ok(()),
            Some(why) => Err(InexactNumber { path: self.path_text(), literal: literal.to_string(), why }),
        }
    }

    fn path_text(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Segment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                Segment::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Key(k) => {
                    let _ = write!(out, "[{}]", serde_json::Value::String(k.clone()));
                }
            }
        }
        if out.is_empty() {
            out.push_str("(the whole value)");
        }
        out
    }
}

/// Why serde_json would not keep `literal` (a JSON number) exactly, if so.
fn inexact(literal: &str) -> Option<&'static str> {
    let integer = !literal.contains(['.', 'e', 'E']);
    if integer {
        if literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok() {
            return None;
        }
        return Some("whole numbers must lie between -9223372036854775808 and 18446744073709551615");
    }
    // What serde_json itself makes of it: that is what would be stored.
    let stored = match serde_json::from_str::<serde_json::Value>(literal) {
        Ok(serde_json::Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    match stored {
        Some(f) if f.is_finite() && Decimal::parse(literal) == Decimal::parse(&format!("{f:e}")) => None,
        Some(f) if f.is_finite() => Some("it has more significant digits than a 64-bit float holds (about 15)"),
        _ => Some("it is too large for a 64-bit float"),
    }
}

/// A decimal number as sign, significant digits and power of ten, so that
/// `1.50`, `15e-1` and `1.5` compare equal.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits: String = format!("{int}{frac}").trim_start_matches('0').to_string();
        let mut exponent = exp.checked_sub(frac.len() as i64)?;
        while digits.ends_with('0') {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            // Zero, whatever its sign or exponent.
            return Some(Decimal { negative: false, digits, exponent: 0 });
        }
        Some(Decimal { negative, digits, exponent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) {
        serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");
        assert_eq!(check(json), Ok(()), "{json}");
    }

    fn bad(json: &str, path: &str) {
        serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");
        let e = check(json).expect_err(json);
        assert_eq!(e.path, path, "{json}");
        assert!(e.to_string().contains("as a string"), "{e}");
    }

    #[test]
    fn exact_numbers_pass() {
        ok(r#"{"a": 0, "b": -0, "c": 12.5, "d": 0.1, "e": 1.50, "f": 1e3, "g": -2.5E-3, "h": 9007199254740993}"#);
        ok(r#"{"max": 18446744073709551615, "min": -9223372036854775808, "pi": 3.141592653589793}"#);
        ok(r#"{"tiny": 5e-324, "big": 1.7976931348623157e308, "zero": 0.000e99, "s": "12345678901234567890123"}"#);
        ok(r#"[1, [2.25, {"x": [true, null, false]}]]"#);
    }

    #[test]
    fn numbers_that_would_change_are_refused_with_their_path() {
        bad(r#"{"big": 12345678901234567890123}"#, "big");
        bad(r#"{"a": {"b": [1, 2, -18446744073709551616]}}"#, "a.b[2]");
        bad(r#"{"amount": 1.2345678901234567890}"#, "amount");
        bad(r#"{"under": 1e-400}"#, "under");
        bad(r#"{"odd key": {"x y": 0.10000000000000000001}}"#, r#"["odd key"]["x y"]"#);
        bad(r#"[0.1, 123456789012345678901]"#, "[1]");
        bad("99999999999999999999", "(the whole value)");
    }

    #[test]
    fn strings_that_look_like_numbers_are_left_alone() {
        ok(r#"{"a\"b": "1e999", "c": "\\", "d": 1}"#);
    }
}
