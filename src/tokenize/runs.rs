//! Sets of characters as the generated tables of `accents` and `categories`
//! carry them: runs of consecutive characters sharing a value (a combining
//! class; 1 for a plain set), each as its gap from the last run's last
//! character (from 0 for the first) and its length less one, both LEB128,
//! then the value when the table has one. A byte or two a run, where a list
//! of 4-byte `char`s took 4 a character.

/// Sorted runs `(first, last, value)`.
pub(super) struct Runs(Vec<(u32, u32, u8)>);

impl Runs {
    /// From the generated form; `valued`: each run ends with its value byte
    /// (otherwise every value is 1).
    pub(super) fn unfold(mut bytes: &[u8], valued: bool) -> Runs {
        let (mut runs, mut last) = (Vec::new(), 0u32);
        // Our own tables, checked whole by their tests: they read to their end.
        while let (Ok(gap), Ok(len)) = (
            crate::format::varint::get(&mut bytes, "character table"),
            crate::format::varint::get(&mut bytes, "character table"),
        ) {
            let value = match valued {
                false => 1,
                true => match bytes.split_first() {
                    Some((&v, rest)) => {
                        bytes = rest;
                        v
                    }
                    None => break,
                },
            };
            let first = last + gap;
            last = first + len;
            runs.push((first, last, value));
        }
        Runs(runs)
    }

    /// `c`'s value; 0 when no run holds it.
    pub(super) fn get(&self, c: char) -> u8 {
        let c = c as u32;
        match self.0.partition_point(|&(first, _, _)| first <= c) {
            0 => 0,
            i => {
                let (_, last, value) = self.0[i - 1];
                if c <= last {
                    value
                } else {
                    0
                }
            }
        }
    }
}

/// Every character's `value` (0: in no run) as the generated form, with the
/// value bytes when `valued`.
#[cfg(test)]
pub(super) fn fold(value: impl Fn(char) -> u8, valued: bool) -> Vec<u8> {
    let mut runs: Vec<(u32, u32, u8)> = Vec::new();
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let v = value(c);
        match runs.last_mut() {
            Some(r) if v != 0 && r.1 + 1 == c as u32 && r.2 == v => r.1 = c as u32,
            _ if v != 0 => runs.push((c as u32, c as u32, v)),
            _ => {}
        }
    }
    let (mut bytes, mut last) = (Vec::new(), 0);
    for (first, end, v) in runs {
        crate::format::varint::put(&mut bytes, first - last);
        crate::format::varint::put(&mut bytes, end - first);
        if valued {
            bytes.push(v);
        }
        last = end;
    }
    bytes
}

/// `bytes` as a Rust byte string literal, 24 bytes a line: how the table
/// generators write their tables.
#[cfg(test)]
pub(super) fn byte_string_literal(bytes: &[u8]) -> String {
    let lines: String = bytes
        .chunks(24)
        .map(|l| format!("    {}\\\n", l.iter().map(|x| format!("\\x{x:02x}")).collect::<String>()))
        .collect();
    format!("b\"\\\n{lines}\"")
}

/// Asserts that `src/tokenize/<file>` holds `want`, first writing it there
/// when `ERNIE_SEARCH_REGENERATE` is set: how the generated tables stay
/// what their crates give.
#[cfg(test)]
pub(super) fn check_generated(file: &str, want: &str) {
    let path = format!("{}/src/tokenize/{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("ERNIE_SEARCH_REGENERATE").is_some() {
        std::fs::write(&path, want).unwrap();
    }
    assert!(std::fs::read_to_string(&path).unwrap() == want, "{path} is stale: regenerate it");
}
