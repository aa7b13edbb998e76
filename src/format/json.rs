//! A small JSON reader and writer for the one JSON file the light build
//! reads: the tokenizer description in a token table's head. serde_json's
//! parser, `Value` and error texts were 13.7 KiB of the light wasm's 140.2
//! KiB gzip (the bytes every static-site visitor downloads first;
//! BENCHMARKS.md); this is the grammar of RFC 8259 and no more.
//!
//! Numbers keep their text (a tokenizer holds only integers, and parsing
//! floats would link the float code back in). Objects keep their keys in
//! file order; a key given twice reads as its last value, as in serde_json.
//! Nesting deeper than [`MAX_DEPTH`] is refused, so a hostile file cannot
//! overflow the stack, and a text of more than [`MAX_VALUES`] values, so it
//! cannot make a tree many times its size (a value takes 16 to 32 bytes in
//! memory; `[0,0,...]` spends 2 bytes of text on each).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::ops::Index;

/// Arrays and objects nested deeper than this are refused (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;
/// The most values a text may hold: 4 Mi, several times a tokenizer's
/// (all-MiniLM-L6-v2's has about 31 k; a 250 k vocabulary with its merges
/// about 1 M), and at most about 130 MB of tree on wasm32.
pub const MAX_VALUES: usize = 1 << 22;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written in the file (checked against the grammar).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Keys in file order.
    Object(Vec<(String, Json)>),
}

static NULL: Json = Json::Null;

/// Where and why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset into the text.
    pub at: usize,
    pub why: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.why, self.at)
    }
}

impl std::error::Error for JsonError {}

impl Json {
    /// Parses a whole text: one value, with only white space around it.
    pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
        Self::parse_at_most(bytes, MAX_VALUES)
    }

    fn parse_at_most(bytes: &[u8], max_values: usize) -> Result<Json, JsonError> {
        let mut p = Parser { b: bytes, at: 0, values: 0, max_values };
        p.space();
        let v = p.value(0)?;
        p.space();
        if p.at != bytes.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }

    /// The value of `key` in an object (its last, when given twice).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A number written as a non-negative integer that fits a u64.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Every object's keys in byte order, a key given twice kept once with
    /// its last value: the form serde_json's `Value` writes.
    pub fn with_sorted_keys(self) -> Json {
        match self {
            Json::Array(items) => Json::Array(items.into_iter().map(Json::with_sorted_keys).collect()),
            Json::Object(pairs) => {
                let map: BTreeMap<String, Json> = pairs.into_iter().map(|(k, v)| (k, v.with_sorted_keys())).collect();
                Json::Object(map.into_iter().collect())
            }
            v => v,
        }
    }
}

/// `v["key"]`: [`Json::Null`] when `v` is not an object or has no such key,
/// so a chain of lookups reads like the file's path.
impl Index<&str> for Json {
    type Output = Json;
    fn index(&self, key: &str) -> &Json {
        self.get(key).unwrap_or(&NULL)
    }
}

impl PartialEq<&str> for Json {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.to_string())
    }
}

/// Compact JSON text (no spaces), strings escaped as serde_json escapes them.
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => f.write_str(n),
            Json::String(s) => write_string(f, s),
            Json::Array(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Json::Object(pairs) => {
                f.write_char('{')?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_string(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

struct Parser<'a> {
    b: &'a [u8],
    at: usize,
    /// Values begun so far, and the most allowed.
    values: usize,
    max_values: usize,
}

impl Parser<'_> {
    fn err(&self, why: &'static str) -> JsonError {
        JsonError { at: self.at, why }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.b[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.values += 1;
        if self.values > self.max_values {
            return Err(self.err("too many values (more than a tokenizer holds)"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of text")),
            Some(b'n') => self.expect(b"null").map(|_| Json::Null),
            Some(b't') => self.expect(b"true").map(|_| Json::Bool(true)),
            Some(b'f') => self.expect(b"false").map(|_| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    /// Steps past an opening bracket; `true` when the list it opens is empty
    /// (its closing bracket is next, and taken).
    fn open(&mut self, depth: usize, close: u8) -> Result<bool, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.at += 1;
        self.space();
        Ok(self.closes(close))
    }

    fn closes(&mut self, close: u8) -> bool {
        let closes = self.peek() == Some(close);
        self.at += closes as usize;
        closes
    }

    /// After an item: `true` when a comma announces another, `false` at the
    /// closing bracket (taken).
    fn another(&mut self, close: u8, why: &'static str) -> Result<bool, JsonError> {
        self.space();
        if self.peek() == Some(b',') {
            self.at += 1;
            self.space();
            Ok(true)
        } else if self.closes(close) {
            Ok(false)
        } else {
            Err(self.err(why))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        let mut items = Vec::new();
        if !self.open(depth, b']')? {
            loop {
                items.push(self.value(depth)?);
                if !self.another(b']', "expected ',' or ']'")? {
                    break;
                }
            }
        }
        Ok(Json::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        let mut pairs = Vec::new();
        if !self.open(depth, b'}')? {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(self.err("expected a key"));
                }
                let key = self.string()?;
                self.space();
                if self.peek() != Some(b':') {
                    return Err(self.err("expected ':'"));
                }
                self.at += 1;
                self.space();
                pairs.push((key, self.value(depth)?));
                if !self.another(b'}', "expected ',' or '}'")? {
                    break;
                }
            }
        }
        Ok(Json::Object(pairs))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        // Only ASCII digits and signs were taken, so the slice is UTF-8.
        Ok(Json::Number(String::from_utf8_lossy(&self.b[start..self.at]).into_owned()))
    }

    /// A string from its opening quote; leaves `at` past the closing one.
    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let run = self.at;
            while matches!(self.peek(), Some(c) if c != b'"' && c != b'\\' && c >= 0x20) {
                self.at += 1;
            }
            let text = std::str::from_utf8(&self.b[run..self.at])
                .map_err(|e| JsonError { at: run + e.valid_up_to(), why: "invalid UTF-8 in a string" })?;
            out.push_str(text);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    /// The character after a backslash.
    fn escape(&mut self) -> Result<char, JsonError> {
        let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
        self.at += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(self.err("invalid escape")),
        })
    }

    /// `\uXXXX`, or a surrogate pair written as two of them.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if !self.b[self.at..].starts_with(b"\\u") {
                    return Err(self.err("lone leading surrogate in a \\u escape"));
                }
                self.at += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(self.err("lone leading surrogate in a \\u escape"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err("lone trailing surrogate in a \\u escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.b.get(self.at..self.at + 4).ok_or_else(|| self.err("unterminated \\u escape"))?;
        let mut v = 0;
        for &d in digits {
            let x = (d as char).to_digit(16).ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + x;
        }
        self.at += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Json, JsonError> {
        Json::parse(s.as_bytes())
    }

    #[test]
    fn reads_every_kind_of_value() {
        let v = parse(r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}} "#).unwrap();
        assert_eq!(v["a"].as_array().map(<[Json]>::len), Some(5));
        assert_eq!(v["a"].as_array().unwrap()[0].as_u64(), Some(1));
        assert_eq!(v["a"].as_array().unwrap()[1], Json::Number("-2.5e3".into()));
        assert_eq!(v["a"].as_array().unwrap()[1].as_u64(), None);
        assert_eq!(v["a"].as_array().unwrap()[2].as_bool(), Some(true));
        assert!(v["a"].as_array().unwrap()[4].is_null());
        assert_eq!(v["b"]["c"], "d\né😀");
        assert!(v["missing"]["deeper"].is_null());
        assert!(v["a"]["not an object"].is_null());
    }

    #[test]
    fn a_key_given_twice_reads_as_its_last_value() {
        assert_eq!(parse(r#"{"k": 1, "k": 2}"#).unwrap()["k"].as_u64(), Some(2));
    }

    #[test]
    fn refuses_what_is_not_json_and_says_where() {
        for (text, at) in [
            ("", 0),
            ("{", 1),
            ("[1,]", 3),
            ("[1 2]", 3),
            ("{\"a\" 1}", 5),
            ("{a: 1}", 1),
            ("01", 1),
            ("-", 1),
            ("1.", 2),
            ("1e", 2),
            ("tru", 0),
            ("\"abc", 4),
            ("\"a\u{1}\"", 2),
            ("\"\\x\"", 3),
            ("\"\\ud800\"", 7),
            ("\"\\udc00\"", 7),
            ("\"\\u12\"", 3),
            ("[] []", 3),
            ("nullx", 4),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.at, at, "{text:?}: {e}");
        }
    }

    #[test]
    fn refuses_invalid_utf8_inside_a_string() {
        let e = Json::parse(b"\"ab\xff\"").unwrap_err();
        assert_eq!(e, JsonError { at: 3, why: "invalid UTF-8 in a string" });
        // After an escape, the offset is still the file's (found by the fuzzer).
        let e = Json::parse(b"\"\\\\\\/\\b#\xbc#\"").unwrap_err();
        assert_eq!(e, JsonError { at: 8, why: "invalid UTF-8 in a string" });
    }

    #[test]
    fn refuses_more_values_than_the_limit() {
        let text = |n: usize| format!("{{\"a\":[{}]}}", vec!["0"; n].join(","));
        // The object, the array and its items.
        assert!(Json::parse_at_most(text(8).as_bytes(), 10).is_ok());
        let e = Json::parse_at_most(text(9).as_bytes(), 10).unwrap_err();
        assert_eq!((e.why, e.at), ("too many values (more than a tokenizer holds)", 22));
        assert!(Json::parse_at_most(b"[[],[],[]]", 3).is_err());
    }

    #[test]
    fn refuses_nesting_past_the_limit_without_overflowing_the_stack() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep).unwrap_err().why, "nested too deeply");
        let hostile = "[{\"a\":".repeat(1_000_000);
        assert_eq!(parse(&hostile).unwrap_err().why, "nested too deeply");
    }

    #[test]
    fn writes_what_it_reads_and_agrees_with_serde_json() {
        let texts = [
            r#"{"model":{"type":"WordPiece","vocab":["[PAD]","a\"b","\\","\t\u0001é"]},"n":-1.5e-3,"x":[true,null,{}]}"#,
            r#"[]"#,
            r#""a/b""#,
        ];
        for text in texts {
            let ours = parse(text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours.to_string(), text, "round trip");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&ours.to_string()).unwrap(), theirs);
        }
        let unsorted = r#"{"b":{"z":1,"a":2},"a":[{"y":null,"x":true}],"b":{"d":0,"c":0}}"#;
        let theirs: serde_json::Value = serde_json::from_str(unsorted).unwrap();
        assert_eq!(parse(unsorted).unwrap().with_sorted_keys().to_string(), theirs.to_string());
        // serde_json escapes control characters the same way.
        let s = "a\u{0}\u{8}\u{c}\n\r\t\u{1f}\"\\z";
        assert_eq!(Json::from(s).to_string(), serde_json::to_string(s).unwrap());
    }
}
