//! Property tests: decoders never panic on arbitrary input.

use muster_api::bot;
use muster_api::pb;
use muster_api::prpc::{self, Format};
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9_:|. -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("taskSlices".to_string()),
                    Just("properties".to_string()),
                    Just("dimensions".to_string()),
                    Just("secret_bytes".to_string()),
                    Just("priority".to_string()),
                    Just("key".to_string()),
                    Just("value".to_string()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn binary_decoding_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = prpc::decode::<pb::NewTaskRequest>(Format::Binary, &bytes);
    }

    #[test]
    fn json_decoding_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = prpc::decode::<pb::NewTaskRequest>(Format::Json, &bytes);
    }

    #[test]
    fn json_decoding_of_random_json_never_panics(v in arb_json()) {
        let text = serde_json::to_vec(&v).expect("a Value serializes");
        if let Ok(req) = prpc::decode::<pb::NewTaskRequest>(Format::Json, &text) {
            // Whatever decodes re-encodes and decodes to the same message.
            let (_, body) = prpc::encode(Format::Json, &req).expect("encodes");
            let again: pb::NewTaskRequest =
                prpc::decode(Format::Json, prpc::strip_json_prefix(&body)).expect("own output decodes");
            prop_assert_eq!(again, req);
        }
    }

    #[test]
    fn decoded_binary_messages_re_encode_identically(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(req) = prpc::decode::<pb::NewTaskRequest>(Format::Binary, &bytes) {
            let (_, body) = prpc::encode(Format::Binary, &req).expect("encodes");
            let again: pb::NewTaskRequest = prpc::decode(Format::Binary, &body).expect("own output decodes");
            prop_assert_eq!(again, req);
        }
    }

    #[test]
    fn parse_dimensions_accepts_exactly_dicts_of_string_lists(v in arb_json()) {
        let well_formed = match &v {
            Value::Null => true,
            Value::Object(m) => m.values().all(|x| x.as_array().is_some_and(|a| a.iter().all(Value::is_string))),
            _ => false,
        };
        match bot::parse_dimensions(&v) {
            Ok(d) => {
                prop_assert!(well_formed, "accepted {v}");
                for values in d.0.values() {
                    let mut sorted = values.clone();
                    sorted.sort();
                    sorted.dedup();
                    prop_assert_eq!(&sorted, values);
                }
            }
            Err(_) => prop_assert!(!well_formed, "rejected {v}"),
        }
    }
}
