//! The model file (GGUF): `read_card`, `verify_model` and `read_model` must
//! return Ok or Err for any bytes, never panic, and never allocate more than
//! the input justifies (see src/lib.rs); and they must agree.
#![no_main]

use ernie_search::format::model::{read_card, read_model, verify_model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    let card = read_card(data);
    match read_model(data) {
        Ok(model) => {
            let card = card.expect("read_model succeeded but read_card failed");
            let verified = verify_model(data).expect("read_model succeeded but verify_model failed");
            assert_eq!(card.tensor_count, model.tensors.len());
            // (Debug, not ==: a NaN layer_norm_eps is not equal to itself.)
            assert_eq!(format!("{card:?}"), format!("{:?}", model.card));
            assert_eq!(format!("{verified:?}"), format!("{:?}", model.card));
        }
        // verify_model runs read_model's checks (and hashes the tensors, which
        // is what makes this target slow): call it where that is cheap.
        Err(_) if card.is_err() => assert!(verify_model(data).is_err(), "verify_model accepts what read_card refuses"),
        Err(_) => {}
    }
});
