//! Our JSON reader (`format::json`), which reads the tokenizer description in
//! a token table's head (a stranger's file), checked against serde_json: it
//! accepts what serde_json accepts and reads the same value (numbers that
//! overflow an f64 are the one thing it takes and serde_json refuses, since
//! it keeps numbers as text); it refuses what serde_json refuses; what it
//! writes reads back as the same value. (Its cap of 4 Mi values is out of
//! the fuzzer's reach: inputs are far shorter; a unit test covers it.)
#![no_main]

use ernie_search::format::json::Json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Ours as serde_json's value; `None` when a number is out of f64's range.
fn to_serde(v: &Json) -> Option<Value> {
    Some(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => serde_json::from_str(n).ok()?,
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_serde).collect::<Option<_>>()?),
        // Inserting in file order keeps a repeated key's last value, as serde_json does.
        Json::Object(pairs) => {
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                map.insert(k.clone(), to_serde(v)?);
            }
            Value::Object(map)
        }
    })
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    let theirs = serde_json::from_slice::<Value>(data);
    match Json::parse(data) {
        Ok(ours) => {
            let back = Json::parse(ours.to_string().as_bytes()).expect("what we write reads back");
            assert_eq!(back, ours, "write, read");
            match (&theirs, to_serde(&ours)) {
                (Ok(theirs), Some(mine)) => assert_eq!(&mine, theirs, "serde_json reads another value"),
                (Err(e), None) => assert!(e.to_string().contains("number out of range"), "serde_json: {e}"),
                (Err(e), Some(_)) => panic!("we accept what serde_json refuses: {e}"),
                (Ok(_), None) => panic!("serde_json reads a number we call out of range"),
            }
            // Sorted keys are serde_json's own text for the same value.
            if let Ok(theirs) = &theirs {
                let sorted = ours.clone().with_sorted_keys();
                assert_eq!(to_serde(&sorted).as_ref(), Some(theirs));
            }
        }
        Err(e) => {
            assert!(e.at <= data.len(), "error offset {} past the end", e.at);
            assert!(theirs.is_err(), "we refuse ({e}) what serde_json reads");
        }
    }
});
